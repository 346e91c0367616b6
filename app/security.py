"""Authentication and CSRF middleware; role checks."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.sessions import session_state
from app.inputs import FORM_SCOPE_KEY
from app.web import current_staff, templates

__all__ = ["AuthMiddleware", "CSRFMiddleware", "requires_role"]

PUBLIC_PREFIXES = ("/login", "/static/", "/healthz", "/cti/webhook/", "/cti/simulate")
CSRF_EXEMPT_PREFIXES = ("/cti/webhook/", "/cti/simulate")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


# While a staff member must change a password an administrator reset, only these paths open.
PASSWORD_CHANGE_PATHS = ("/password", "/logout", "/session")


class AuthMiddleware:
    """Every page and websocket requires a logged-in staff member who is still active; the
    role is the staff master's, not the one the session was opened with (both read with the
    session's row by :class:`app.auth.sessions.SessionMiddleware`). A staff member whose
    password an administrator reset sees only the change-password screen until it is done."""

    def __init__(
        self, app: ASGIApp, sessionmaker: async_sessionmaker[AsyncSession] | None = None
    ) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        conn = HTTPConnection(scope)
        if path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        staff = current_staff(conn)
        state = session_state(conn)
        if staff is not None:
            if not state.staff_active or state.staff_id != staff.id:
                conn.session.clear()
                staff = None
            elif state.staff_role != staff.role:
                conn.session["staff"] = {**conn.session["staff"], "role": state.staff_role}
        if (
            staff is not None
            and state.must_change_password
            and not path.startswith(PASSWORD_CHANGE_PATHS)
        ):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4401, "reason": "password"})
                return
            forced: Response
            if conn.headers.get("HX-Request") == "true":
                forced = Response(status_code=401, headers={"HX-Redirect": "/password"})
            else:
                forced = RedirectResponse("/password", status_code=303)
            await forced(scope, receive, send)
            return
        if staff is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "login required"})
            return
        response: Response
        target = "/login?next=" + quote(path + ("?" + conn.url.query if conn.url.query else ""))
        if conn.headers.get("HX-Request") == "true":
            response = Response(status_code=401, headers={"HX-Redirect": target})
        elif conn.headers.get("accept", "").startswith("application/json"):
            response = PlainTextResponse("login required", status_code=401)
        else:
            response = RedirectResponse(target, status_code=303)
        await response(scope, receive, send)


class CSRFMiddleware:
    """State-changing requests must carry the session's token (header or form field)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE
            or scope["path"].startswith(CSRF_EXEMPT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        expected = conn.session.get("csrf", "")
        sent = conn.headers.get("x-csrf-token", "")
        if not sent:
            # The input guard (app/inputs.py) has parsed and checked the form already.
            form = scope.get(FORM_SCOPE_KEY)
            value = form.get("csrf_token", "") if isinstance(form, FormData) else ""
            sent = value if isinstance(value, str) else ""
        if not expected or not sent or not hmac.compare_digest(str(expected), sent):
            from app.errors import error_response

            response = error_response(
                Request(scope),
                403,
                message="セッションの有効期限が切れたか、不正な送信です。何も保存していません。"
                "画面を再読み込みしてから、もう一度操作してください。",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


Endpoint = Callable[[Request], Awaitable[Response]]


def requires_role(*roles: str) -> Callable[[Endpoint], Endpoint]:
    """Allow the endpoint to these roles (admin is always allowed)."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            staff = current_staff(request)
            if staff is None or not staff.has_role(*roles):
                return templates.TemplateResponse(
                    request, "forbidden.html", {"roles": roles}, status_code=403
                )
            return await endpoint(request)

        return wrapper

    return decorate
