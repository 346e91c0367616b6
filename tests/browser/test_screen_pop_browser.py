"""Browser: caller ID written to a real modem pty pops the customer on the operator's screen."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from app.config import Settings
from tests.browser.pages import log_in, simulate
from tests.cti.conftest import PtyPair
from tests.devices import FakeModem
from tests.factories import add_customer

pytestmark = [pytest.mark.browser, pytest.mark.serial]


def test_modem_caller_id_pops_customer_without_a_click(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
    settings: Settings,
    modem_pty: PtyPair,
) -> None:
    taro = add_customer(
        database_url,
        "佐賀 太郎",
        "サガ タロウ",
        "0952-32-6611",
        "090-9999-9999",
        alert="耳が遠い方なので大きい声でお願いします",
    )
    kitada = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    make_staff("koga", name="古賀 雅美", extension="201", line="main")
    make_staff("yamada", name="山田 花子", extension="202", line="sales")
    sources = [
        {"kind": "simulator"},
        {
            "kind": "modem",
            "port": str(modem_pty.dev),
            "line": "main",
            "init": ["ATZ", "AT+VCID=1"],
            "ring_end_s": 60.0,
        },
    ]
    server = live_server_factory({"YEBISU_CTI_SOURCES": json.dumps(sources)})
    modem = FakeModem(modem_pty.peer)
    try:
        modem.wait_initialised()
        koga, yamada = new_page(), new_page()
        log_in(koga, server.url, "koga")
        log_in(yamada, server.url, "yamada")

        # A call on the modem's line: the modem cannot tell the extension, so every available
        # operator of line "main" gets it — 古賀 — and nobody on line "sales".
        modem.send(
            b"\r\nRING\r\n\r\nDATE = 1123\r\nTIME = 1405\r\nNMBR = 0952326611\r\n\r\nRING\r\n"
        )
        pop = koga.locator("#pop-area .pop")
        pop.locator(".pop-name .name", has_text="佐賀 太郎").wait_for()
        assert "耳が遠い方なので大きい声でお願いします" in pop.inner_text()
        assert "0952-32-6611" in pop.inner_text()
        assert yamada.locator("#pop-area .pop").count() == 0

        # A call to extension 201 pops only there, never on 202's screen.
        simulate(
            server.url,
            settings.server.secret_key,
            action="ring",
            number="0312345678",
            extension="201",
        )
        koga.locator("#pop-area .pop .name", has_text="北田 君子").wait_for()
        time.sleep(0.5)
        assert yamada.locator("#pop-area .pop").count() == 0

        # Alt+Enter takes the newest ringing call (北田 君子's, on top) and opens her monitor.
        koga.keyboard.press("Alt+Enter")
        koga.wait_for_url(f"**/customers/{kitada}?call=*")
        assert koga.locator(".monitor-head .customer-name").inner_text() == "北田 君子"
        # 佐賀 太郎's call is still ringing for 古賀 on the new page (replayed on connect).
        koga.locator("#pop-area .pop-ringing .name", has_text="佐賀 太郎").wait_for()
        assert taro
    finally:
        modem.close()


def test_broadcast_call_taken_by_first_closes_the_other_pop(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
    settings: Settings,
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美", extension="201")
    make_staff("yamada", name="山田 花子", extension="202")
    server = live_server_factory()
    koga, yamada = new_page(), new_page()
    log_in(koga, server.url, "koga")
    log_in(yamada, server.url, "yamada")
    simulate(server.url, settings.server.secret_key, action="ring", number="0952-32-6611")
    for page in (koga, yamada):
        page.locator("#pop-area .pop .name", has_text="佐賀 太郎").wait_for()
    yamada.locator("#pop-area .pop .take").click()
    yamada.wait_for_url(f"**/customers/{cid}?call=*")
    koga.locator("#pop-area .pop").wait_for(state="detached")
    # 山田's monitor shows the call as 通話中 (the pop came back on the new page's socket)
    yamada.locator("#pop-area .pop-answered").wait_for()
    assert yamada.locator("#presence .presence-fixed").inner_text() == "通話中"


def test_chooser_and_new_customer_form_in_the_pop(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
    settings: Settings,
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    hanako = add_customer(database_url, "佐賀 花子", "サガ ハナコ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")

    # A family's shared home phone: the operator asks who is calling and picks 花子.
    simulate(
        server.url, settings.server.secret_key, action="ring", number="0952326611", extension="201"
    )
    pop = page.locator("#pop-area .pop")
    pop.get_by_text("この番号の顧客が2名います").wait_for()
    pop.locator("button.choose", has_text="佐賀 花子").click()
    page.wait_for_url(f"**/customers/{hanako}?call=*")
    assert page.locator(".monitor-head .customer-name").inner_text() == "佐賀 花子"

    # An unknown number: the form has the number filled in; a missing name is refused beside
    # the field, then the customer is registered and their monitor opens.
    simulate(
        server.url,
        settings.server.secret_key,
        action="ring",
        number="06-6777-8888",
        extension="201",
    )
    form = page.locator("#pop-area .pop-ringing form.pop-new")
    form.wait_for()
    assert form.locator("input[name=phone]").input_value() == "06-6777-8888"
    form.get_by_role("button", name="新規登録して顧客モニタへ").click()
    page.locator("#pop-area form.pop-new .error", has_text="顧客名を入力してください。").wait_for()
    # htmx puts the cursor in the field in error once the swap settles; typing starts after
    page.wait_for_function("() => document.activeElement && document.activeElement.name === 'name'")
    form = page.locator("#pop-area form.pop-new")
    form.locator("input[name=name]").fill("大阪 一郎")
    form.locator("input[name=kana]").fill("おおさか いちろう")
    form.get_by_role("button", name="新規登録して顧客モニタへ").click()
    page.wait_for_url(lambda url: "/customers/" in url and f"/customers/{hanako}?" not in url)
    assert page.locator(".monitor-head .customer-name").inner_text() == "大阪 一郎"
    assert "06-6777-8888" in page.locator(".monitor-head .phones").inner_text()
