"""The operator console: server-rendered pages with a little hand-written JS."""
