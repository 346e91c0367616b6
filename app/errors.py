"""Error pages: every unknown URL, refused request and unhandled error answers in Japanese.

A browser gets the page inside the app's frame (with the menu when logged in), an htmx request a
fragment shown as a toast (``static/js/errors.js``), a JSON client JSON. An unhandled error gets
an error id (8 hex digits) that the page shows and the log line with the traceback carries, so
that a user can quote it and an administrator find it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket

from app.headers import add_security_headers
from app.web import TEMPLATES_DIR, is_htmx, templates

__all__ = ["error_response", "exception_handlers", "http_error", "server_error"]

log = logging.getLogger("yebisu.errors")

# Without a session in reach (an error before the session middleware ran) the page is
# rendered with no context processors: no menu, no CSRF token.
_plain_templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

TITLES: dict[int, str] = {
    400: "リクエストを処理できません",
    401: "ログインが必要です",
    403: "権限がありません",
    404: "ページが見つかりません",
    405: "この操作はできません",
    408: "時間切れです",
    409: "他の操作と競合しました",
    413: "送信内容が大きすぎます",
    414: "URL が長すぎます",
    415: "送信形式が正しくありません",
    422: "入力内容を確認してください",
    429: "アクセスが集中しています",
    500: "システムエラーが発生しました",
    502: "システムに接続できません",
    503: "ただいま利用できません",
    504: "時間切れです",
}
MESSAGES: dict[int, str] = {
    400: "送信された内容を処理できませんでした。画面を再読み込みしてからもう一度操作してください。",
    401: "ログインし直してから、もう一度操作してください。",
    403: "この操作を行う権限がありません。必要な場合は管理者に連絡してください。",
    404: "お探しのページは見つかりませんでした。URL が正しいか、メニューから開き直してください。",
    405: "この画面ではその操作はできません。メニューから開き直してください。",
    408: "処理に時間がかかりすぎました。もう一度操作してください。",
    409: "他の操作と競合しました。画面を再読み込みしてから、もう一度操作してください。",
    413: "送信された内容が大きすぎます。入力を減らしてから、もう一度送信してください。",
    414: "URL が長すぎます。条件を減らしてから、もう一度操作してください。",
    415: "送信された形式を処理できません。画面を再読み込みしてから、もう一度操作してください。",
    422: "入力内容を確認してから、もう一度送信してください。",
    429: "アクセスが集中しています。しばらく待ってから、もう一度操作してください。",
    500: "処理中に問題が起きました。お手数ですが、エラー番号を添えて管理者に連絡してください。",
    502: "システムに接続できませんでした。しばらく待ってから、もう一度操作してください。",
    503: "ただいま利用できません。しばらく待ってから、もう一度操作してください。",
    504: "処理に時間がかかりすぎました。しばらく待ってから、もう一度操作してください。",
}


def new_error_id() -> str:
    """A short id (8 hex digits) for one unhandled error: on the page and in the log."""
    return secrets.token_hex(4)


def _wants_json(request: HTTPConnection) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _has_session(request: HTTPConnection) -> bool:
    return "session" in request.scope


def _detail(status: int, detail: str | None) -> str:
    """A message of our own (Japanese) from the exception, else the status' message."""
    default = MESSAGES.get(status) or (MESSAGES[500] if status >= 500 else MESSAGES[400])
    if not detail or detail.isascii():  # Starlette's English phrase ("Not Found", …)
        return default
    return detail


def error_response(
    request: Request,
    status_code: int,
    *,
    message: str = "",
    error_id: str = "",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The Japanese error answer for ``status_code`` in the form the client asked for: a page
    in the app's frame, an htmx fragment (retargeted to the toasts), or JSON."""
    title = TITLES.get(status_code) or (TITLES[500] if status_code >= 500 else TITLES[400])
    text = _detail(status_code, message)
    out_headers = dict(headers or {})
    response: Response
    if _wants_json(request):
        body: dict[str, Any] = {"error": title, "message": text, "status": status_code}
        if error_id:
            body["error_id"] = error_id
        response = JSONResponse(body, status_code=status_code, headers=out_headers)
    else:
        context = {"status": status_code, "title": title, "message": text, "error_id": error_id}
        fragment = is_htmx(request)
        name = "errors/_fragment.html" if fragment else "errors/page.html"
        if fragment:
            # htmx swaps 400/409/422 (base.html's htmx-config): into the toasts, not the form.
            out_headers.update({"HX-Retarget": "#toasts", "HX-Reswap": "beforeend"})
        response = _render(request, name, context, status_code, out_headers)
    return response


def _render(
    request: Request, name: str, context: dict[str, Any], status: int, headers: dict[str, str]
) -> Response:
    if _has_session(request):
        try:
            return templates.TemplateResponse(
                request, name, context, status_code=status, headers=headers
            )
        except Exception:  # the frame itself failed (menu, session): the plain page follows
            log.exception("error page %s could not be rendered in the frame", status)
    try:
        return _plain_templates.TemplateResponse(
            request, name, {**context, "plain": True}, status_code=status, headers=headers
        )
    except Exception:
        log.exception("error page %s could not be rendered", status)
        ident = f"（エラー番号 {context['error_id']}）" if context.get("error_id") else ""
        return HTMLResponse(
            f'<!doctype html><html lang="ja"><meta charset="utf-8"><title>{context["title"]}'
            f"</title><h1>{context['title']}</h1><p>{context['message']}{ident}</p></html>",
            status_code=status,
            headers=headers,
        )


async def http_error(request: Request, exc: Exception) -> Response | None:
    """HTTPException of any status (the router's 404 and 405 among them)."""
    assert isinstance(exc, HTTPException)
    if isinstance(request, WebSocket):  # raised in a websocket endpoint: close it
        await request.close(code=1008)
        return None
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return error_response(request, exc.status_code, message=exc.detail, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """An unhandled exception: log it with a new error id and show that id. Registered for
    ``Exception``, so Starlette's ServerErrorMiddleware (outside every other middleware) calls
    it; an HTTPException raised outside the routes (a middleware's) gets its own page."""
    if isinstance(exc, HTTPException):
        log.warning(
            "%s %s: HTTP %s outside the routes", request.method, request.url.path, exc.status_code
        )
        _mark_logged(exc)
        response = await http_error(request, exc) or error_response(request, exc.status_code)
    else:
        error_id = new_error_id()
        log.error(
            "unhandled error %s on %s %s",
            error_id,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        _mark_logged(exc)
        response = error_response(request, 500, error_id=error_id)
    # This response does not pass through the headers middleware (it is inside this one).
    add_security_headers(
        response.headers, path=request.url.path, host=request.headers.get("host", "")
    )
    return response


# --- one traceback per error in the log ------------------------------------------------------

LOGGED_ATTR = "_yebisu_logged"


def _mark_logged(exc: BaseException) -> None:
    # (an exception type that takes no attributes is simply not marked)
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, LOGGED_ATTR, True)


class AlreadyLoggedFilter(logging.Filter):
    """Starlette re-raises an exception after the error page is sent, and the server logs its
    traceback again ("Exception in ASGI application"): drop that second copy of one we
    logged with its error id (or answered as a plain HTTP error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and getattr(exc, LOGGED_ATTR, False))


def install_log_filter() -> None:
    """Attach :class:`AlreadyLoggedFilter` to the server's error logger (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, AlreadyLoggedFilter) for f in logger.filters):
        logger.addFilter(AlreadyLoggedFilter())


exception_handlers: dict[Any, Any] = {HTTPException: http_error, Exception: server_error}
