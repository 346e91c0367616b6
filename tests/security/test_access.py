"""Access control, generated from ``app.routes``: every route × anonymous and every role against
the table in ``access_table.py``. Anonymous is sent to the log-in page (303, or 401 to htmx);
a role the table does not allow gets 403; an allowed role reaches the handler (no 401/403, no
redirect to the log-in page, no 5xx) with real objects in the path."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.security.access_table import ACCESS, PUBLIC, ROLES, SIGNED
from tests.security.conftest import Sessions, World
from tests.security.walk import UNSAFE, Case, cases, is_mount, mount_url

ORIGIN = {"origin": "http://testserver"}


def test_every_route_is_in_the_table(sec_app: Any) -> None:
    keys = [c.key for c in cases(sec_app)]
    missing = [f"{m} {p}" for m, p in keys if (m, p) not in ACCESS]
    stale = [f"{m} {p}" for m, p in ACCESS if (m, p) not in keys]
    assert not missing, (
        "routes not classified in tests/security/access_table.py (say who may use them):\n  "
        + "\n  ".join(missing)
    )
    assert not stale, "table entries no route matches (removed or renamed?):\n  " + "\n  ".join(
        stale
    )


def _ordered(app: Any) -> list[Case]:
    """Reads first, then writes; log-out last (it ends the session)."""
    all_cases = [c for c in cases(app) if c.key in ACCESS]
    return sorted(
        all_cases,
        key=lambda c: (c.method in UNSAFE, c.key == ("POST", "/logout")),
    )


def _url(app: Any, case: Case, world: World) -> str:
    return mount_url(case, world.params) if is_mount(app, case) else case.url(world.params)


def _ws(client: Any, url: str) -> int | None:
    """None when the websocket was accepted, else the close code."""
    try:
        with client.websocket_connect(url, headers=ORIGIN):
            return None
    except WebSocketDisconnect as exc:
        return int(exc.code)


def _http(sessions: Sessions, who: str, case: Case, url: str, *, htmx: bool = False) -> Any:
    client = sessions.client
    headers = {"HX-Request": "true"} if htmx else {}
    if case.method in UNSAFE:
        # A valid token: this suite checks roles, test_csrf.py checks tokens.
        headers["X-CSRF-Token"] = sessions.tokens[who]
        return client.request(case.method, url, headers=headers, data={}, follow_redirects=False)
    return client.request(case.method, url, headers=headers, follow_redirects=False)


def _to_login(response: Any) -> bool:
    return response.status_code == 303 and response.headers.get("location", "").startswith("/login")


def test_anonymous(sec_app: Any, sessions: Sessions, sec_world: World) -> None:
    problems: list[str] = []
    for case in _ordered(sec_app):
        rule = ACCESS[case.key]
        sessions.use("anonymous")
        url = _url(sec_app, case, sec_world)
        label = f"{case.method} {url}"
        if case.method == "WS":
            code = _ws(sessions.client, url)
            if rule != PUBLIC and code != 4401:
                problems.append(f"{label}: websocket close code {code}, expected 4401")
            continue
        r = _http(sessions, "anonymous", case, url)
        if rule == PUBLIC:
            if r.status_code >= 500 or r.status_code in (401, 403) or _to_login(r):
                problems.append(f"{label}: {r.status_code}, expected open to anyone")
        elif rule == SIGNED:
            if r.status_code != 401:
                problems.append(f"{label}: {r.status_code}, expected 401 without a signature")
        else:
            if not _to_login(r):
                problems.append(
                    f"{label}: {r.status_code} {r.headers.get('location', '')}, "
                    "expected 303 to /login"
                )
            h = _http(sessions, "anonymous", case, url, htmx=True)
            if h.status_code != 401 or not h.headers.get("HX-Redirect", "").startswith("/login"):
                problems.append(f"{label} (htmx): {h.status_code}, expected 401 + HX-Redirect")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_role(role: str, sec_app: Any, sessions: Sessions, sec_world: World) -> None:
    problems: list[str] = []
    for case in _ordered(sec_app):
        rule = ACCESS[case.key]
        client = sessions.use(role)
        url = _url(sec_app, case, sec_world)
        label = f"{role} {case.method} {url}"
        if case.method == "WS":
            code = _ws(client, url)
            allowed = rule == PUBLIC or (isinstance(rule, frozenset) and role in rule)
            if allowed and code is not None:
                problems.append(f"{label}: websocket closed {code}, expected accepted")
            if not allowed and code != 4403:
                problems.append(f"{label}: websocket {code or 'accepted'}, expected close 4403")
            continue
        r = _http(sessions, role, case, url)
        status = r.status_code
        if rule == SIGNED:
            if status != 401:
                problems.append(f"{label}: {status}, expected 401 without a signature")
        elif case.key == ("POST", "/logout"):
            if not _to_login(r):  # log-out answers with the log-in page
                problems.append(f"{label}: {status}, expected 303 to /login")
        elif rule == PUBLIC or role in rule:
            if status >= 500 or status in (401, 403) or _to_login(r):
                problems.append(f"{label}: {status}, expected the handler to answer")
        elif status != 403:
            problems.append(f"{label}: {status}, expected 403 (not allowed to {role})")
        if case.key == ("POST", "/logout") and status == 303:
            sessions.relogin(role)
    assert not problems, "\n".join(problems)
