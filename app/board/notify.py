"""Tell the live boards that something they count changed."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.requests import Request


def board_task(request: Request, *, kind: str) -> BackgroundTask | None:
    """A background task for a success response: after the request's transaction committed,
    the supervisors' boards refresh what ``kind`` ("order", "response", "call", "presence",
    "outbound") changes."""
    return None
