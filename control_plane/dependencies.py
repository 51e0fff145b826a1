"""FastAPI dependencies shared by the domain routers."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine


def get_engine(request: Request) -> AsyncEngine:
    """The store engine the app was started with."""
    engine: AsyncEngine = request.app.state.engine
    return engine
