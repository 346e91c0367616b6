"""Log-in and log-out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.auth.service import authenticate
from app.calls.presence import set_presence
from app.config import Settings
from app.web import current_staff, db, templates


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def login_page(request: Request) -> Response:
    if current_staff(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return templates.TemplateResponse(
        request,
        "auth/login.html",
        {"next": _safe_next(request.query_params.get("next")), "errors": {}, "form": {}},
    )


async def login_submit(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    form = await request.form()
    login = str(form.get("login", "")).strip()
    password = str(form.get("password", ""))
    extension = str(form.get("extension", "")).strip()
    next_url = _safe_next(str(form.get("next", "")))
    errors: dict[str, str] = {}
    if not login:
        errors["login"] = "ログインIDを入力してください。"
    if not password:
        errors["password"] = "パスワードを入力してください。"
    if extension and not extension.isascii():
        errors["extension"] = "内線番号は半角で入力してください。"
    if not errors:
        session = db(request)
        result = await authenticate(
            session,
            login=login,
            password=password,
            max_failed=settings.auth.max_failed_logins,
            lockout_minutes=settings.auth.lockout_minutes,
            ip=request.client.host if request.client else "",
        )
        # Failures are counted even though the response is an error page.
        await session.commit()
        if result.staff is not None:
            staff = result.staff
            bound = extension or staff.extension
            await set_presence(
                session,
                staff_id=staff.id,
                state="available" if staff.role == "operator" else "away",
                extension=bound,
                line=staff.line,
            )
            await session.commit()
            request.session.clear()
            request.session["staff"] = {
                "id": staff.id,
                "login": staff.login,
                "name": staff.name,
                "role": staff.role,
                "extension": bound,
                "line": staff.line,
            }
            return RedirectResponse(next_url, status_code=303)
        errors["password"] = result.error
    return templates.TemplateResponse(
        request,
        "auth/login.html",
        {"next": next_url, "errors": errors, "form": {"login": login, "extension": extension}},
        status_code=400,
    )


async def logout(request: Request) -> Response:
    staff = current_staff(request)
    if staff is not None:
        await set_presence(db(request), staff_id=staff.id, state="offline")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
