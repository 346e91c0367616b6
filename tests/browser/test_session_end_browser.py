"""Browser: when the session ends elsewhere (retired in the staff master, logged out on
another PC), the open page leaves for the log-in screen at once instead of retrying its live
connection for ever."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.test_live_revocation import Browser
from tests.browser.pages import log_in

pytestmark = pytest.mark.browser


def test_a_retired_operators_page_goes_to_the_login_screen(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
) -> None:
    koga = make_staff("koga", name="古賀 雅美", extension="201")
    make_staff("office", role="backoffice")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")
    page.goto(server.url + "/customers")
    page.wait_for_selector("#presence select")
    office = Browser(server.url)
    try:
        office.login("office")
        started = time.monotonic()
        assert office.post(f"/masters/staff/{koga}/active", {"active": "0"}).status_code == 303
        page.wait_for_url("**/login?next=%2Fcustomers", timeout=5_000)
        assert time.monotonic() - started < 5
        assert page.locator("#login").is_visible()
    finally:
        office.close()


def test_a_dead_session_does_not_retry_for_ever(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
) -> None:
    """The socket drops for another reason (here: the server restarts) while the session has
    ended meanwhile: the page asks, hears 401, and goes to the log-in screen."""
    make_staff("koga", extension="201")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")
    # the session is gone from the table (as after an expiry) and the connection drops
    page.context.clear_cookies()
    page.evaluate(
        "() => htmx.find('#ws') && htmx.trigger('#ws', 'htmx:wsClose', {event: {code: 1006}})"
    )
    page.wait_for_url("**/login?next=%2F", timeout=5_000)
