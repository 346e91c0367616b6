"""Log-in, log-out, changing one's own password, and a session probe for the page script."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.audit.service import record
from app.auth.models import Staff
from app.auth.service import (
    authenticate,
    bind_extension,
    change_own_password,
    extension_holder,
    may_bind,
)
from app.auth.sessions import end_sessions, purge_expired, rotate_session, session_state
from app.calls.presence import set_presence
from app.config import Settings
from app.inputs import read_form
from app.web import current_staff, db, templates


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def login_page(request: Request) -> Response:
    if current_staff(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return templates.TemplateResponse(
        request,
        "auth/login.html",
        {"next": _safe_next(request.query_params.get("next")), "errors": {}, "form": {}},
    )


async def login_submit(request: Request) -> Response:
    """Log in. The extension (blank: the registered one) must be one this log-in may use, and
    one no other logged-in staff member holds — unless 「内線を引き継ぐ」 is ticked, which
    takes it over (audited). The session gets a new id."""
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    login = str(form.get("login", "")).strip()
    password = str(form.get("password", ""))
    extension = str(form.get("extension", "")).strip()
    takeover = form.get("takeover") == "1"
    next_url = _safe_next(str(form.get("next", "")))
    errors: dict[str, str] = {}
    offer_takeover = False
    if not login:
        errors["login"] = "ログインIDを入力してください。"
    if not password:
        errors["password"] = "パスワードを入力してください。"
    if extension and not (extension.isascii() and extension.isalnum() and len(extension) <= 32):
        errors["extension"] = "内線番号は半角の数字（32文字まで）で入力してください。"
    if not errors:
        session = db(request)
        result = await authenticate(
            session,
            login=login,
            password=password,
            max_failed=settings.auth.max_failed_logins,
            lockout_minutes=settings.auth.lockout_minutes,
            ip=_ip(request),
            audit_success=False,
        )
        # Failures are counted even though the response is an error page.
        await session.commit()
        if result.staff is not None:
            staff = result.staff
            bound = extension or staff.extension
            holder = await extension_holder(
                session, staff_id=staff.id, extension=bound, idle_s=settings.server.session_idle_s
            )
            if not may_bind(staff, bound):
                errors["extension"] = (
                    f"内線 {bound} はこのログインIDでは使えません。"
                    "空欄にすると登録済みの内線でログインします。"
                )
            elif holder is not None and not takeover:
                errors["extension"] = (
                    f"内線 {bound} は {holder.name} さんがログイン中に使っています。"
                    "引き継ぐときは「内線を引き継ぐ」にチェックして、もう一度ログインしてください。"
                )
                offer_takeover = True
                await record(
                    session,
                    action="login_extension_held",
                    entity="staff",
                    entity_id=staff.id,
                    staff_id=staff.id,
                    changes={"extension": bound, "holder": holder.login},
                    ip=_ip(request),
                )
                await session.commit()
            else:
                await bind_extension(
                    session, staff=staff, extension=bound, taken_from=holder, ip=_ip(request)
                )
                await purge_expired(session, idle_s=settings.server.session_idle_s)
                await record(
                    session,
                    action="login",
                    entity="staff",
                    entity_id=staff.id,
                    staff_id=staff.id,
                    ip=_ip(request),
                )
                await session.commit()
                if holder is not None:
                    await _tell_taken(request, holder, staff, bound)
                request.session.clear()
                request.session["staff"] = {
                    "id": staff.id,
                    "login": staff.login,
                    "name": staff.name,
                    "role": staff.role,
                    "extension": bound,
                    "line": staff.line,
                }
                rotate_session(request)
                if staff.must_change_password:
                    target = "/password" + (f"?next={quote(next_url)}" if next_url != "/" else "")
                    return RedirectResponse(target, status_code=303)
                return RedirectResponse(next_url, status_code=303)
        else:
            errors["password"] = result.error
    return templates.TemplateResponse(
        request,
        "auth/login.html",
        {
            "next": next_url,
            "errors": errors,
            "form": {"login": login, "extension": extension},
            "offer_takeover": offer_takeover,
        },
        status_code=400,
    )


async def _tell_taken(request: Request, holder: Staff, staff: Staff, extension: str) -> None:
    """A toast on the pages of the staff member whose extension was taken over."""
    from markupsafe import escape

    html = (
        '<div id="toasts" hx-swap-oob="beforeend"><p class="toast" role="status">'
        f"内線 {escape(extension)} は {escape(staff.name)} さんに引き継がれました。"
        "この画面には着信が表示されません。</p></div>"
    )
    await request.app.state.hub.deliver([holder.id], html)


async def logout(request: Request) -> Response:
    """Log out: every session of this staff member ends (on every PC), their pages' live
    connections close and they are off-line."""
    staff = current_staff(request)
    if staff is not None:
        session = db(request)
        await set_presence(session, staff_id=staff.id, state="offline")
        await end_sessions(session, staff_id=staff.id)
        await record(
            session, action="logout", entity="staff", entity_id=staff.id, staff_id=staff.id
        )
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _password_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    next_url: str | None = None,
    status_code: int = 200,
) -> Response:
    state = session_state(request)
    return templates.TemplateResponse(
        request,
        "auth/password.html",
        {
            "errors": errors or {},
            "forced": state.must_change_password,
            "done": False,
            "next": next_url or _safe_next(request.query_params.get("next")),
        },
        status_code=status_code,
    )


async def password_form(request: Request) -> Response:
    """パスワード変更 (also the only screen while an administrator's reset is pending)."""
    return _password_page(request)


async def password_submit(request: Request) -> Response:
    staff_now = current_staff(request)
    assert staff_now is not None  # AuthMiddleware
    form = await read_form(request)
    session = db(request)
    staff = await session.get(Staff, staff_now.id)
    if staff is None:
        return RedirectResponse("/login", status_code=303)
    errors = await change_own_password(
        session,
        staff=staff,
        current=str(form.get("current", "")),
        new=str(form.get("new", "")),
        again=str(form.get("again", "")),
        keep_session=session_state(request).id_hash,
        ip=_ip(request),
    )
    if errors:
        await session.commit()  # a wrong current password is audited
        return _password_page(
            request, errors=errors, next_url=_safe_next(str(form.get("next"))), status_code=400
        )
    return templates.TemplateResponse(
        request,
        "auth/password.html",
        {"errors": {}, "forced": False, "done": True, "next": _safe_next(str(form.get("next")))},
    )


async def session_probe(request: Request) -> Response:
    """204 while logged in (AuthMiddleware answers 401 otherwise): the page script asks when
    its live connection drops, to go to the log-in screen rather than retry for ever."""
    return Response(status_code=204)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/password", password_form, methods=["GET"]),
    Route("/password", password_submit, methods=["POST"]),
    Route("/session", session_probe, methods=["GET"]),
]
