"""Security headers on every response (a Content-Security-Policy that allows no inline script,
no framing, no sniffing, no referrer to other sites, no caching of pages) and the websocket's
Origin check, against a real server and a real websocket client."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import MutableHeaders
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from app.headers import add_security_headers, origin_allowed
from tests.calls.test_multiprocess import cookie_for
from tests.conftest import login

ROOT = Path(__file__).resolve().parent.parent


def _policy(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def _assert_secure(headers: Any, *, page: bool = True) -> None:
    csp = headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    p = _policy(csp)
    assert p["default-src"] == ["'self'"] and p["script-src"] == ["'self'"]
    assert p["style-src"] == ["'self'"] and p["object-src"] == ["'none'"]
    assert p["frame-ancestors"] == ["'none'"] and p["base-uri"] == ["'self'"]
    assert p["form-action"] == ["'self'"] and p["connect-src"][0] == "'self'"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    if page:
        assert headers["cache-control"] == "no-store"


def test_every_response_carries_the_security_headers(
    client: Any, make_staff: Callable[..., int]
) -> None:
    _assert_secure(client.get("/login").headers)
    redirect = client.get("/customers", follow_redirects=False)
    assert redirect.status_code == 303
    _assert_secure(redirect.headers)
    make_staff("koga")
    login(client, "koga")
    for path in ("/", "/customers", "/outbound", "/nonexistent"):
        _assert_secure(client.get(path).headers)
    fragment = client.get("/customers", headers={"HX-Request": "true"})
    _assert_secure(fragment.headers)
    # the websocket of the same host, for browsers whose 'self' does not cover ws:
    csp = _policy(client.get("/").headers["content-security-policy"])
    assert csp["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]
    # Static files may be cached; they are still not sniffed.
    css = client.get("/static/css/app.css")
    assert css.status_code == 200 and "no-store" not in css.headers.get("cache-control", "")
    _assert_secure(css.headers, page=False)


def test_a_forged_host_does_not_reach_the_policy(client: Any) -> None:
    r = client.get("/login", headers={"Host": "evil.example; script-src *"})
    p = _policy(r.headers["content-security-policy"])
    assert p["connect-src"] == ["'self'"] and p["script-src"] == ["'self'"]


def test_a_pdf_keeps_only_frame_ancestors() -> None:
    """Chrome shows a PDF in a built-in viewer that object-src 'none' would leave blank."""
    headers = MutableHeaders({"content-type": "application/pdf"})
    add_security_headers(headers, path="/board/today.pdf", host="x")
    assert headers["content-security-policy"] == "frame-ancestors 'none'"
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"


# What a Content-Security-Policy without 'unsafe-inline' / 'unsafe-eval' would break.
INLINE = [
    (re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I | re.S), "an inline on*= handler"),
    (re.compile(r"hx-on", re.I), "hx-on (evaluated code)"),
    (re.compile(r"hx-vars|js:|javascript:", re.I), "hx-vars / js: / javascript: (evaluated code)"),
    (re.compile(r"hx-trigger=\S*\[", re.I), "an hx-trigger [filter] (evaluated code)"),
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style|\sstyle=", re.I), "an inline style"),
]


@pytest.mark.parametrize("pattern,what", INLINE, ids=[w for _, w in INLINE])
def test_no_template_or_view_carries_inline_code(pattern: re.Pattern[str], what: str) -> None:
    files = [*(ROOT / "templates").rglob("*.html"), *(ROOT / "app").rglob("*.py")]
    found = [
        f"{f.relative_to(ROOT)}: {m.group(0)[:60]!r}"
        for f in files
        for m in pattern.finditer(f.read_text())
        if not (f.suffix == ".py" and what == "an inline style")  # Python "style" names
    ]
    assert found == [], f"{what} (move it to static/js): {found}"


def test_origin_rule() -> None:
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert origin_allowed("https://cti.example.jp", "cti.example.jp")  # TLS at a proxy
    assert origin_allowed("http://cti.example.jp", "CTI.example.jp")
    assert origin_allowed("http://[::1]:8000", "[::1]:8000")
    assert not origin_allowed("http://127.0.0.1:9000", "127.0.0.1:8000")  # another port
    assert not origin_allowed("https://cti.example.jp:8443", "cti.example.jp")
    assert not origin_allowed("http://evil.example", "cti.example.jp")
    assert not origin_allowed("http://cti.example.jp.evil.example", "cti.example.jp")
    assert not origin_allowed("null", "cti.example.jp")
    assert not origin_allowed("file://", "cti.example.jp")
    assert not origin_allowed("http://cti.example.jp:bad", "cti.example.jp")
    proxy = ["https://cti.example.jp"]
    assert origin_allowed("https://cti.example.jp", "10.0.0.5:8000", proxy)
    assert not origin_allowed("https://evil.example", "10.0.0.5:8000", proxy)


def test_the_websocket_refuses_a_foreign_origin(
    live_server_factory: Callable[..., Any], make_staff: Callable[..., int]
) -> None:
    make_staff("koga", extension="201")
    server = live_server_factory({"YEBISU_SERVER_ALLOWED_ORIGINS": "https://cti.example.jp"})
    cookie = cookie_for(server.url, "koga")
    ws_url = server.url.replace("http://", "ws://") + "/ws"
    headers = {"Cookie": cookie}
    for origin in ("http://evil.example", server.url.replace("127.0.0.1", "localhost")):
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, origin=origin, additional_headers=headers, open_timeout=5)
        assert refused.value.response.status_code == 403, origin
    assert "Origin 'http://evil.example' is not this site" in server.output()
    # This site's own pages (and a configured proxy origin, and a client that sends none).
    for origin in (server.url, "https://cti.example.jp", None):
        with connect(ws_url, origin=origin, additional_headers=headers, open_timeout=5) as ws:
            ws.ping().wait(5)
