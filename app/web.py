"""Shared web plumbing: templates, page-or-partial rendering, the request's DB session."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.sessions import CLOSE_AFTER_COMMIT, close_sockets_after_commit
from app.dates import JST as JST  # re-exported: route modules import it from here
from app.events import dispatch_committed
from app.menu import menu_for

# Re-exported: route modules, app.main and app.errors take these from app.web.
from app.templating import ROOT as ROOT
from app.templating import STATIC_DIR as STATIC_DIR
from app.templating import TEMPLATES_DIR as TEMPLATES_DIR
from app.templating import templates as templates


def csrf_token(conn: HTTPConnection) -> str:
    """The session's CSRF token, created on first use."""
    token = conn.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        conn.session["csrf"] = token
    return str(token)


def _base_context(request: Request) -> dict[str, Any]:
    staff = current_staff(request)
    return {
        "staff": staff,
        "csrf_token": csrf_token(request),
        "menu": menu_for(staff, request.url.path),
    }


# The pages' context (who is logged in, the CSRF token, the menu) is web-only, so the shared
# environment of app.templating gets it here, once, when the web layer is imported.
if _base_context not in templates.context_processors:
    templates.context_processors.append(_base_context)


def is_htmx(request: Request) -> bool:
    """An htmx request for a fragment (a boosted link or a history restore wants the page)."""
    h = request.headers
    return (
        h.get("HX-Request") == "true"
        and h.get("HX-Boosted") != "true"
        and h.get("HX-History-Restore-Request") != "true"
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render ``{name}/page.html``, or ``{name}/_partial.html`` when htmx asks for a fragment."""
    template = f"{name}/_partial.html" if is_htmx(request) else f"{name}/page.html"
    return templates.TemplateResponse(
        request, template, context or {}, status_code=status_code, headers=headers
    )


@dataclass
class CurrentStaff:
    id: int
    login: str
    name: str
    role: str
    extension: str
    line: str

    def has_role(self, *roles: str) -> bool:
        return self.role in roles or self.role == "admin"


def current_staff(conn: HTTPConnection) -> CurrentStaff | None:
    data = conn.session.get("staff")
    return CurrentStaff(**data) if data else None


def require_staff(conn: HTTPConnection) -> CurrentStaff:
    """The logged-in staff member, in a route that ``AuthMiddleware`` (or ``requires_role``)
    only lets logged-in staff reach: none there is a programming error."""
    staff = current_staff(conn)
    if staff is None:
        raise RuntimeError("require_staff() outside AuthMiddleware: nobody is logged in")
    return staff


class _LazySession:
    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self.maker = maker
        self.session: AsyncSession | None = None

    def get(self) -> AsyncSession:
        if self.session is None:
            self.session = self.maker()
        return self.session


def db(request: Request) -> AsyncSession:
    """The request's one database session; committed or rolled back by DBSessionMiddleware."""
    holder: _LazySession = request.scope["yebisu.db"]
    return holder.get()


class DBSessionMiddleware:
    """One session per request: commit before a success response starts, else roll back.
    After a commit, the events published on the session go to their subscribers
    (:mod:`app.events`).
    After a commit, the websockets of staff members whose sessions were ended in it
    (:func:`app.auth.sessions.end_sessions`) are closed on every app process."""

    def __init__(self, app: ASGIApp, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.app = app
        self.sessionmaker = sessionmaker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder = _LazySession(self.sessionmaker)
        scope["yebisu.db"] = holder
        finished = False

        async def finish(ok: bool) -> None:
            nonlocal finished
            if finished or holder.session is None:
                finished = True
                return
            finished = True
            session = holder.session
            try:
                if ok:
                    await session.commit()
                else:
                    await session.rollback()
            finally:
                await session.close()
            if ok:  # committed: the events published in the request reach their subscribers
                dispatch_committed(session)
            if ok and session.info.get(CLOSE_AFTER_COMMIT):
                hub = getattr(scope["app"].state, "hub", None)
                if hub is not None:
                    await close_sockets_after_commit(session, hub)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                await finish(message["status"] < 400)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if holder.session is not None and not finished:
                finished = True
                await holder.session.rollback()
                await holder.session.close()
            raise
        finally:
            if not finished:
                await finish(False)
