"""The touchscreen kiosk: a FastAPI app on loopback that Chromium shows full screen.

One page (Jinja2 + hand-written JS + CSS, no framework), commands as small JSON POSTs, and a
WebSocket that pushes the register's whole state after every change and carries scanner input.
"""
