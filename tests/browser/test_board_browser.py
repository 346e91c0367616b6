"""Browser, two contexts: the supervisor's board follows a simulated call that the operator
in the other context answers, and today's counts change — no reload, no polling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.config import Settings
from tests.browser.pages import log_in, simulate
from tests.factories import add_customer

pytestmark = [pytest.mark.browser]


def test_board_shows_ringing_answered_and_ended_live(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
    settings: Settings,
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", code="C001")
    koga_id = make_staff("koga", name="古賀 雅美", extension="201", line="main")
    make_staff("suzuki", name="鈴木 リーダー", role="supervisor", extension="", line="main")
    server = live_server_factory()
    koga, board = new_page(), new_page()
    log_in(koga, server.url, "koga")
    log_in(board, server.url, "suzuki")
    board.goto(server.url + "/board")
    board.wait_for_load_state("networkidle")
    row = board.locator(f"#operator-{koga_id}")
    row.locator(".state", has_text="待機").wait_for()
    assert board.locator("#count-inbound").inner_text() == "0"
    # Marks the document: a reload would lose it.
    board.evaluate("() => { window.stillTheSamePage = true; }")

    call_id = simulate(
        server.url, settings.server.secret_key, action="ring", number="0952326611", extension="201"
    )
    row.locator(".state", has_text="呼出中").wait_for()
    board.locator("#board-ringing li", has_text="佐賀 太郎").wait_for()
    board.locator("#count-inbound", has_text="1").wait_for()

    # The operator answers on the pop in the other context.
    koga.locator("#pop-area .pop .take").click()
    koga.wait_for_url("**/customers/**")
    row.locator(".state", has_text="通話中").wait_for()
    assert "佐賀 太郎" in row.inner_text()
    board.locator("#count-answered", has_text="1").wait_for()
    # The duration runs in the browser.
    board.wait_for_function(
        "id => { const t = document.querySelector('#operator-' + id + ' .tick');"
        " return t && /^0:0[1-9]$/.test(t.textContent); }",
        arg=koga_id,
    )
    assert board.locator("#board-ringing li", has_text="佐賀 太郎").count() == 0

    simulate(server.url, settings.server.secret_key, action="hangup", call_id=call_id)
    row.locator(".state", has_text="後処理").wait_for()

    # A call nobody takes is counted as missed and waits for a call-back.
    missed = simulate(server.url, settings.server.secret_key, action="ring", number="0312345678")
    simulate(server.url, settings.server.secret_key, action="hangup", call_id=missed)
    board.locator("#count-missed", has_text="1").wait_for()
    board.locator("#count-inbound", has_text="2").wait_for()
    assert board.locator("#missed-count").inner_text() == "1"
    assert board.evaluate("() => window.stillTheSamePage === true")
