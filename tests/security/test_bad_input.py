"""Bad input, generated from the app's own forms: every form found on a page or partial (and
every GET route's query string) gets a NUL, control characters, invalid UTF-8, a 1 MB value,
too many fields and full-width digits. Each is refused with a Japanese 4xx (400 for control
characters and invalid UTF-8, 413 for too large) and writes nothing; full-width digits are
legitimate input: saved normalised or answered with a Japanese message, never a 5xx."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from app.inputs import ascii_int
from tests.security.access_table import ACCESS, PUBLIC, SIGNED
from tests.security.conftest import Sessions, World, row_counts
from tests.security.forms import Form, forms_in, route_of
from tests.security.walk import UNSAFE, Case, cases, is_mount

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MB = 1024 * 1024
NUL = "試\x00験"
CONTROL = "a\x01b\x1b[31mc\x7f"
FULL_WIDTH = "１２３４"
# Never fuzzed: the token is not user input, and log-out has nothing to type.
SKIP_FIELDS = {"csrf_token"}
SKIP_ROUTES = {("POST", "/logout")}


# Forms no page shows in this world (a ringing pop, a confirmation, a preview): their fields by
# hand, from the handlers. A route here whose form a page does show uses the page's.
HAND_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/calls/take"): {"source": "simulator", "call": "x"},
    ("POST", "/calls/choose"): {"source": "simulator", "call": "x", "customer_id": "1"},
    ("POST", "/calls/register"): {
        "name": "試験 太郎",
        "kana": "シケン タロウ",
        "phone": "0952-26-1111",
        "phone_kind": "home",
        "confirm": "1",
        "seen": "",
    },
    ("POST", "/masters/{key}/import/apply"): {"text": "code,name\r\n", "encoding": "utf-8"},
    ("POST", "/masters/{key}/{id:int}/delete"): {"back": ""},
    ("POST", "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}/restore"): {},
    ("POST", "/masters/ranks/recalculate"): {},
}
# Fields that carry a whole file (the previewed CSV posted back): limited as an upload.
BULK_FIELDS = {(("POST", "/masters/{key}/import/apply"), "text")}
# Posted from the confirmation the confirm route answers: the same fields.
SAME_FIELDS = {
    ("POST", "/customers/{customer_id:int}/order"): (
        "POST",
        "/customers/{customer_id:int}/order/confirm",
    ),
}


def _who(rule: Any) -> str:
    return "anonymous" if rule == PUBLIC else "admin"


def _japanese_4xx(r: Any) -> bool:
    return 400 <= r.status_code < 500 and bool(JAPANESE.search(r.text))


@pytest.fixture(scope="module")
def found(sec_app: Any, sessions: Sessions, sec_world: World) -> dict[tuple[str, str], Form]:
    """One form per route it posts to (fields merged), from every page and partial."""
    pages: list[tuple[str, str]] = []
    for case in cases(sec_app):
        rule = ACCESS.get(case.key)
        if case.method != "GET" or rule is None or rule == SIGNED or is_mount(sec_app, case):
            continue
        pages.append((_who(rule), case.url(sec_world.params)))
    pages.append(("anonymous", "/login"))
    out: dict[tuple[str, str], Form] = {}
    for who, url in pages:
        client = sessions.use(who)
        for headers in ({}, {"HX-Request": "true"}):
            r = client.get(url, headers=headers, follow_redirects=False)
            if r.status_code != 200 or "html" not in r.headers.get("content-type", ""):
                continue
            for form in forms_in(r.text, url):
                route = route_of(sec_app, form.method, form.action)
                if route is None:
                    continue
                key = (form.method, route.path)
                if key in out:
                    for k, v in form.fields.items():
                        out[key].fields.setdefault(k, v)
                else:
                    out[key] = form
    return out


def test_forms_are_found(found: dict[tuple[str, str], Form]) -> None:
    """The generated suite reaches the app's main forms (a parser regression would hide them)."""
    for key in (
        ("POST", "/login"),
        ("POST", "/customers/new"),
        ("POST", "/customers/{customer_id:int}"),
        ("POST", "/customers/{customer_id:int}/responses"),
        ("POST", "/customers/{customer_id:int}/order/confirm"),
        ("POST", "/masters/{key}/new"),
        ("GET", "/customers"),
    ):
        assert key in found, f"no form found for {key}; found: {sorted(found)}"


def _post_forms(
    app: Any, found: dict[tuple[str, str], Form], world: World
) -> list[tuple[Case, Form]]:
    """Every state-changing route with the form that posts to it (a bare one if none does)."""
    out = []
    for case in cases(app):
        rule = ACCESS.get(case.key)
        if case.method not in UNSAFE or rule is None or rule == SIGNED:
            continue
        if case.key in SKIP_ROUTES:
            continue
        form = found.get(case.key)
        if form is None:
            form = Form(case.method, case.url(world.params), "")
            same = found.get(SAME_FIELDS.get(case.key, ("", "")))
            form.fields = dict(same.fields) if same else dict(HAND_FIELDS.get(case.key, {}))
        out.append((case, form))
    return out


def _send(
    sessions: Sessions,
    who: str,
    case: Case,
    form: Form,
    url: str,
    fields: dict[str, str | bytes],
    *,
    raw: bytes | None = None,
) -> Any:
    client = sessions.use(who)
    headers = {"X-CSRF-Token": sessions.tokens[who], "HX-Request": "true"}
    target = url + ("?" + form.query if form.query else "")
    if form.multipart or form.files:
        files = {name: ("master.csv", b"code,name\r\n", "text/csv") for name in form.files}
        data = {k: v for k, v in fields.items()}
        return client.request(
            case.method,
            target,
            headers=headers,
            data=data,
            files=files or None,
            follow_redirects=False,
        )
    if raw is None:
        raw = urlencode({k: v for k, v in fields.items()}).encode()
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return client.request(case.method, target, headers=headers, content=raw, follow_redirects=False)


def test_every_form_refuses_bad_input(
    sec_app: Any, sessions: Sessions, sec_world: World, found: dict[tuple[str, str], Form]
) -> None:
    problems: list[str] = []
    # The lead's decision (issue 14 item 7): a sane total (an order of 250+ lines is fine).
    max_fields = sec_app.state.settings.inputs.max_fields
    for case, form in _post_forms(sec_app, found, sec_world):
        rule = ACCESS[case.key]
        who = _who(rule)
        sessions.use(who)
        url = form.action
        base: dict[str, str | bytes] = {
            k: v for k, v in form.fields.items() if k not in SKIP_FIELDS
        }
        base["csrf_token"] = sessions.tokens[who]
        names = [k for k in form.fields if k not in SKIP_FIELDS] or ["probe"]
        label = f"{case.method} {case.path}"
        before = row_counts(sec_world.url)

        def expect(r: Any, status: int, what: str, label: str = label) -> None:
            if r.status_code != status or not _japanese_4xx(r):
                problems.append(
                    f"{label} {what}: {r.status_code}, expected {status} with a Japanese message"
                )

        for name in names:
            expect(_send(sessions, who, case, form, url, {**base, name: NUL}), 400, f"{name}=NUL")
            expect(
                _send(sessions, who, case, form, url, {**base, name: CONTROL}),
                400,
                f"{name}=control characters",
            )
            rest = {k: v for k, v in base.items() if k != name}
            raw = urlencode(rest).encode() + b"&" + quote(name).encode() + b"=\xff\xfe%FF"
            if form.multipart or form.files:
                r = _send(sessions, who, case, form, url, {**rest, name: b"\xff\xfe"})
            else:
                r = _send(sessions, who, case, form, url, base, raw=raw)
            expect(r, 400, f"{name}=invalid UTF-8")
        # A field that carries a whole CSV may be as long as an upload: 1 MB goes elsewhere.
        first = next((n for n in names if (case.key, n) not in BULK_FIELDS), names[0])
        expect(
            _send(sessions, who, case, form, url, {**base, first: "あ" * (MB // 3 + 1)}),
            413,
            f"{first}=1 MB",
        )
        many = {**base, **{f"line_{i}": "1" for i in range(max_fields + 1)}}
        expect(_send(sessions, who, case, form, url, many), 413, f"{max_fields + 1:,} fields")
        after = row_counts(sec_world.url)
        changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
        if changed:
            problems.append(f"{label}: rows written by refused input {changed}")
        for name in names:
            r = _send(sessions, who, case, form, url, {**base, name: FULL_WIDTH})
            if r.status_code >= 500 or (r.status_code >= 400 and not _japanese_4xx(r)):
                problems.append(
                    f"{label} {name}=full-width digits: {r.status_code}, expected a save or a "
                    "Japanese message"
                )
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _asgi_get(sessions: Sessions, path: str, query: bytes) -> tuple[int, str]:
    """GET ``path?query`` straight through the app (the current session's cookies)."""
    client = sessions.client
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items()).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), (b"cookie", cookie)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "app": client.app,
    }
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await client.app(scope, receive, send)

    client.portal.call(run)
    return int(out["status"]), bytes(out["body"]).decode("utf-8", "replace")


def test_every_query_string_refuses_bad_input(
    sec_app: Any, sessions: Sessions, sec_world: World, found: dict[tuple[str, str], Form]
) -> None:
    problems: list[str] = []
    before = row_counts(sec_world.url)
    for case in cases(sec_app):
        rule = ACCESS.get(case.key)
        if case.method != "GET" or rule is None or rule == SIGNED or is_mount(sec_app, case):
            continue
        who = _who(rule)
        client = sessions.use(who)
        url = case.url(sec_world.params)
        form = found.get(case.key)
        names = [k for k in (form.fields if form else {}) if k not in SKIP_FIELDS] or ["q"]
        for name in names:
            q = quote(name)
            for value, status, what in (
                ("%E8%A9%A6%00", 400, "NUL"),
                ("a%01b%1B", 400, "control characters"),
                ("%FF%FE", 400, "invalid UTF-8"),
            ):
                r = client.get(f"{url}?{q}={value}", follow_redirects=False)
                if r.status_code != status or not _japanese_4xx(r):
                    problems.append(
                        f"GET {url}?{name}= {what}: {r.status_code}, expected {status} "
                        "with a Japanese message"
                    )
            r = client.get(f"{url}?{q}={quote(FULL_WIDTH)}", follow_redirects=False)
            if r.status_code >= 500 or (r.status_code >= 400 and not _japanese_4xx(r)):
                problems.append(f"GET {url}?{name}=full-width digits: {r.status_code}")
        # httpx refuses a URL over 64 KiB: the 1 MB query goes to the app as ASGI directly.
        status, body = _asgi_get(sessions, url, f"{quote(names[0])}=".encode() + b"a" * MB)
        if not (400 <= status < 500 and JAPANESE.search(body)):
            problems.append(f"GET {url} with a 1 MB query value: {status}, expected 4xx")
    after = row_counts(sec_world.url)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    if changed:
        problems.append(f"GET requests wrote rows {changed}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


# Query values the app reads as numbers (ids, pages, filters) beyond the fields of the pages'
# own GET forms: every GET route gets each of them.
NUMBER_NAMES = (
    "page",
    "staff",
    "before",
    "done",
    "call",
    "outbound",
    "response",
    "empty",
    "reorder",
    "subscription",
    "days",
    "rank",
    "product",
    "carrier",
    "entered_by",
    "owner",
    "list",
    "id",
)
HUGE = "9" * 20  # past a 64-bit integer: the database driver would overflow
SUPERSCRIPT = "%C2%B2"  # "²": str.isdigit() says yes, int() says no


def test_every_query_number_is_bounded(
    sec_app: Any, sessions: Sessions, sec_world: World, found: dict[tuple[str, str], Form]
) -> None:
    """A 20-digit number or a superscript digit in any query value is ignored or answered
    with a Japanese message, never a 5xx, and writes nothing."""
    problems: list[str] = []
    before = row_counts(sec_world.url)
    for case in cases(sec_app):
        rule = ACCESS.get(case.key)
        if case.method != "GET" or rule is None or rule == SIGNED or is_mount(sec_app, case):
            continue
        client = sessions.use(_who(rule))
        url = case.url(sec_world.params)
        form = found.get(case.key)
        fields = [k for k in (form.fields if form else {}) if k not in SKIP_FIELDS]
        for name in dict.fromkeys([*fields, *NUMBER_NAMES]):
            for value, what in ((HUGE, "20 digits"), (SUPERSCRIPT, "superscript digit")):
                r = client.get(f"{url}?{quote(name)}={value}", follow_redirects=False)
                if r.status_code >= 500 or (r.status_code >= 400 and not _japanese_4xx(r)):
                    problems.append(f"GET {url}?{name}= {what}: {r.status_code}")
    after = row_counts(sec_world.url)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    if changed:
        problems.append(f"GET requests wrote rows {changed}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_every_int_route_with_a_huge_id_is_the_404_page(
    sec_app: Any, sessions: Sessions, sec_world: World
) -> None:
    """Every ``{…:int}`` route with a 20-digit id (past a 64-bit integer) does not match: the
    Japanese 404 page, never a 5xx from the database driver."""
    problems: list[str] = []
    checked = 0
    for case in cases(sec_app):
        rule = ACCESS.get(case.key)
        if case.method == "WS" or rule is None or ":int}" not in case.path:
            continue
        who = "admin" if rule == SIGNED else _who(rule)
        client = sessions.use(who)
        params = {
            **sec_world.params,
            **{name: HUGE for name in re.findall(r"\{(\w+):int\}", case.path)},
        }
        url = case.url(params)
        headers = {"X-CSRF-Token": sessions.tokens[who]} if case.method in UNSAFE else {}
        r = client.request(case.method, url, headers=headers, follow_redirects=False)
        checked += 1
        if r.status_code != 404 or "ページが見つかりません" not in r.text:
            problems.append(f"{case.method} {url}: {r.status_code}, expected the 404 page")
    assert checked >= 20, f"only {checked} int routes found"
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", 12),
        ("１２", 12),  # full-width: typed with the Japanese IME
        (" 7 ", 7),
        ("²", 2),  # a compatibility digit reads as its digit (NFKC), never a ValueError
        ("٣", None),  # another script's digit
        ("-1", None),
        ("1.5", None),
        ("", None),
        (None, None),
        ("9" * 9, 999_999_999),
        ("9" * 10, None),  # past max_digits: not a number the database can hold
    ],
)
def test_ascii_int(raw: str | None, expected: int | None) -> None:
    assert ascii_int(raw) == expected
