"""Top screen and the sections that are not built yet."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.board.service import status_alerts
from app.config import Settings
from app.menu import SECTIONS, Section
from app.security import requires_role
from app.web import db, render


async def home(request: Request) -> Response:
    """The top screen: quick search, menu and the status alerts (D4)."""
    settings: Settings = request.app.state.settings
    alerts = await status_alerts(db(request), settings=settings)
    return render(request, "home", {"fkeys": [(1, "顧客検索", "#home-search")], "alerts": alerts})


def _placeholder(section: Section) -> Route:
    @requires_role(*section.roles)
    async def endpoint(request: Request) -> Response:
        return render(request, "placeholder", {"section": section})

    endpoint.__name__ = f"placeholder_{section.key}"
    return Route(section.path, endpoint, methods=["GET"])


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    *(_placeholder(s) for s in SECTIONS if not s.built),
]
