"""The register: composed once (``compose``) from one settings object (``settings``).

``health`` is its readiness, heartbeat and metrics; ``agent_link`` its end of the fleet agent's
socket; ``hub_commands`` the hardware commands passed through it; ``demo`` the demo's settings.
"""
