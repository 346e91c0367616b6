"""Error pages: an unknown URL, a refused method and an unhandled error answer in Japanese —
a page inside the app's frame, a fragment for htmx, JSON for a JSON client — and an unhandled
error's id is on the page and in the log line with the traceback."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from app.config import Settings
from app.errors import AlreadyLoggedFilter, server_error
from app.main import create_app
from tests.conftest import csrf_of, login

ERROR_ID = re.compile(r'<code id="error-id">([0-9a-f]{8})</code>')


def _main(html: str) -> str:
    return html.split('<main id="main">')[1].split("</main>")[0]


async def _boom(request: Request) -> Response:
    raise RuntimeError("test-only failure: customer 山田 太郎")


@pytest.fixture
def boom_client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The app with one extra route that always fails; server errors are answered, not raised."""
    app = create_app(settings, var_dir=tmp_path / "var")
    app.router.routes.append(Route("/test-boom", _boom, methods=["GET", "POST"]))
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


def test_unknown_urls_show_one_japanese_404_page_inside_the_frame(
    client: Any, make_staff: Callable[..., int]
) -> None:
    make_staff("koga", name="古賀 雅美")
    login(client, "koga")
    pages = [
        client.get(path)
        for path in ("/nonexistent", "/customers/abc", "/orders/zzz", "/customers/1.5/orders")
    ]
    for page in pages:
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "ページが見つかりません" in page.text
        assert "Not Found" not in page.text
        # inside the frame: the menu and who is logged in
        assert 'aria-label="メインメニュー"' in page.text and "古賀 雅美" in page.text
    assert len({_main(p.text) for p in pages}) == 1  # the same page for each


def test_anonymous_404_is_a_plain_japanese_page(client: Any) -> None:
    # A page behind the log-in sends an anonymous visitor to log in first …
    r = client.get("/nonexistent", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # … a public path that does not exist is the Japanese page, with no menu.
    for path in ("/static/nonexistent.css", "/login/nonexistent"):
        page = client.get(path)
        assert page.status_code == 404 and "ページが見つかりません" in page.text, path
        assert "メインメニュー" not in page.text and "Not Found" not in page.text


def test_wrong_method_is_a_japanese_405_page(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("suzuki", role="supervisor")
    login(client, "suzuki")
    page = client.get("/outbound/lists")  # POST only
    assert page.status_code == 405 and "この操作はできません" in page.text
    assert page.headers["allow"] == "POST"
    assert 'aria-label="メインメニュー"' in page.text
    page = client.post("/customers", data={"csrf_token": csrf_of(client)})  # GET only
    assert page.status_code == 405 and "この操作はできません" in page.text


def test_htmx_gets_a_fragment_and_json_clients_json(
    client: Any, make_staff: Callable[..., int]
) -> None:
    make_staff("koga")
    login(client, "koga")
    r = client.get("/customers/abc", headers={"HX-Request": "true"})
    assert r.status_code == 404
    assert "<html" not in r.text and 'class="toast error"' in r.text
    assert "ページが見つかりません" in r.text
    assert r.headers["HX-Retarget"] == "#toasts" and r.headers["HX-Reswap"] == "beforeend"
    # a boosted link or a history restore wants the whole page
    r = client.get("/customers/abc", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in r.text and "ページが見つかりません" in r.text
    r = client.get("/customers/abc", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == 404 and body["error"] == "ページが見つかりません"
    assert "error_id" not in body


def test_an_unhandled_error_is_a_japanese_500_page_with_its_id_in_the_log(
    boom_client: TestClient, make_staff: Callable[..., int], caplog: pytest.LogCaptureFixture
) -> None:
    make_staff("koga", name="古賀 雅美")
    login(boom_client, "koga")
    with caplog.at_level(logging.ERROR, logger="yebisu.errors"):
        page = boom_client.get("/test-boom")
    assert page.status_code == 500
    assert "システムエラーが発生しました" in page.text and "エラー番号" in page.text
    assert "Internal Server Error" not in page.text and "RuntimeError" not in page.text
    assert "山田" not in page.text  # nothing of the exception reaches the page
    assert 'aria-label="メインメニュー"' in page.text and "古賀 雅美" in page.text
    m = ERROR_ID.search(page.text)
    assert m, page.text
    error_id = m.group(1)
    [record] = [r for r in caplog.records if r.name == "yebisu.errors"]
    assert error_id in record.getMessage() and "/test-boom" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "Traceback" in caplog.text and "test-only failure" in caplog.text
    # the same security headers as every page
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="yebisu.errors"):
        frag = boom_client.get("/test-boom", headers={"HX-Request": "true"})
        data = boom_client.get("/test-boom", headers={"Accept": "application/json"})
    ids = [r.getMessage().split()[2] for r in caplog.records if r.name == "yebisu.errors"]
    assert frag.status_code == 500 and "<html" not in frag.text
    assert f'data-error-id="{ids[0]}"' in frag.text and "エラー番号" in frag.text
    assert data.status_code == 500 and data.json()["error_id"] == ids[1]
    assert data.json()["error"] == "システムエラーが発生しました"
    assert ids[0] != ids[1]


def test_a_500_before_the_session_is_a_plain_japanese_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An error outside every middleware (no session in reach) still gets the Japanese page."""
    import asyncio

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"host", b"testserver")],
        "query_string": b"",
    }
    with caplog.at_level(logging.ERROR, logger="yebisu.errors"):
        response = asyncio.run(server_error(Request(scope), ValueError("early")))
    assert response.status_code == 500
    body = bytes(response.body).decode()
    assert "システムエラーが発生しました" in body and "メインメニュー" not in body
    error_id = ERROR_ID.search(body)
    assert error_id and error_id.group(1) in caplog.text


def test_the_servers_second_traceback_of_a_logged_error_is_dropped() -> None:
    """Starlette re-raises after the error page; uvicorn would log the same traceback again
    without the id."""
    logged, other = RuntimeError("logged"), RuntimeError("other")
    logged._yebisu_logged = True  # type: ignore[attr-defined]

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application",
            None, (type(exc), exc, None),
        )  # fmt: skip

    f = AlreadyLoggedFilter()
    assert not f.filter(record(logged))
    assert f.filter(record(other))
    assert f.filter(logging.LogRecord("x", logging.ERROR, __file__, 1, "plain", None, None))
