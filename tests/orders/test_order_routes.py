"""受注入力 tab over HTTP: the form, recompute, 入力確認, idempotent submit, 再注文."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from app.calls.models import Call
from app.db import make_engine, make_sessionmaker, transaction
from app.orders.models import Order
from app.responses.models import Action
from app.subscriptions.models import Subscription, SubscriptionItem
from app.web import JST
from tests.conftest import csrf_of, login, run_async
from tests.factories import add_customer, add_masters

HX = {"HX-Request": "true"}


def db_run(url: str, fn: Callable[[Any], Any]) -> Any:
    """Run ``await fn(session)`` in its own transaction."""

    async def go() -> Any:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                return await fn(s)
        finally:
            await engine.dispose()

    return run_async(go())


def add_call(url: str, *, staff_id: int, customer_id: int) -> int:
    async def fn(s: Any) -> int:
        call = Call(
            source="simulator",
            source_call_id=f"c-{staff_id}-{customer_id}",
            state="answered",
            staff_id=staff_id,
            customer_id=customer_id,
            caller_e164="+81952326611",
        )
        s.add(call)
        await s.flush()
        return int(call.id)

    return int(db_run(url, fn))


def orders_of(url: str) -> list[Order]:
    async def fn(s: Any) -> list[Order]:
        return list((await s.scalars(select(Order).order_by(Order.id))).all())

    return list(db_run(url, fn))


def count(url: str, model: Any) -> int:
    async def fn(s: Any) -> int:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)

    return int(db_run(url, fn))


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} in the page"
    return m.group(1)


def form_of(html: str) -> dict[str, list[str]]:
    """The named inputs of the rendered order form (checked radios, selected options)."""
    html = re.sub(r"<template\b.*?</template>", "", html, flags=re.S)
    fields: dict[str, list[str]] = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or ('type="radio"' in tag and " checked" not in tag):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields.setdefault(name.group(1), []).append(value.group(1) if value else "")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option(?: value="([^"]*)")? selected>([^<]*)', body)
        if chosen:
            fields[name] = [chosen.group(1) if chosen.group(1) is not None else chosen.group(2)]
    return fields


@pytest.fixture
def world(client: Any, database_url: str, make_staff: Callable[..., int]) -> dict[str, Any]:
    add_masters(database_url)
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    other = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    koga = make_staff("koga", name="古賀 雅美", extension="201")
    yamada = make_staff("yamada", name="山田 花子", extension="202")
    login(client, "koga")
    return {"taro": taro, "other": other, "koga": koga, "yamada": yamada}


def post(client: Any, url: str, fields: dict[str, list[str]], **extra: str) -> Any:
    data = {k: list(v) for k, v in fields.items()}
    for k, v in extra.items():
        data[k] = [v]
    return client.post(url, data=data, headers={**HX, "X-CSRF-Token": csrf_of(client)})


def with_lines(fields: dict[str, list[str]], *lines: tuple[str, str]) -> dict[str, list[str]]:
    out = {k: v for k, v in fields.items() if k not in ("code", "qty", "price", "base")}
    out["code"] = [c for c, _ in lines]
    out["qty"] = [q for _, q in lines]
    out["price"] = ["" for _ in lines]
    out["base"] = ["" for _ in lines]
    return out


def test_order_tab_shows_the_form_with_defaults(client: Any, world: dict[str, Any]) -> None:
    r = client.get(f"/customers/{world['taro']}/order")
    assert r.status_code == 200
    html = r.text
    assert "佐賀 太郎" in html and 'class="tab active"' in html  # inside the monitor
    assert re.search(r'id="line-0-code"[^>]*autofocus', html.replace("\n", " "))
    assert "<kbd>F1</kbd> 登録" in html and 'data-target="#order-f1"' in html
    assert '<script src="/static/js/order.js" defer></script>' in html
    fields = form_of(html)
    assert re.fullmatch(r"[0-9a-f]{32}", fields["idempotency_key"][0])
    today = dt.datetime.now(JST).date()
    assert fields["received_on"] == [f"{today:%Y/%m/%d}"]
    assert fields["carrier"] == ["yamato"] and fields["payment"] == ["cod"]
    assert fields["slip_type"] == ["normal"] and fields["allocation"] == ["電話"]
    assert fields["category"] == ["通常"] and fields["time_slot"] == [""]
    assert fields["ship_on"][0] and fields["deliver_on"][0]
    assert '<span id="order-origin">福岡県</span>' in html
    assert '<span id="order-dest">九州 佐賀県</span>' in html
    for label in ("発送先", "広告", "区分", "振分区分", "受付日", "出荷予定日", "お届け予定日"):
        assert label in html
    for slot in ("指定なし", "午前中", "14-16時", "19-21時"):
        assert slot in html


def test_recompute_expands_sets_adds_companions_and_totals(
    client: Any, world: dict[str, Any]
) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = form_of(client.get(url).text)
    r = post(client, url + "/form", with_lines(fields, ("30001", "2"), ("20002", "1"), ("", "1")))
    assert r.status_code == 200
    html = r.text
    assert html.startswith('<div id="order-entry"') and "monitor-head" not in html
    after = form_of(html)
    assert after["code"] == ["30001", "20002", ""]  # the empty line stays for the next product
    assert after["price"] == ["12800", "5900", ""]
    assert after["base"] == ["30001:12800", "20002:5900", ""]
    rows = re.findall(r'<tr class="order-child order-(\w+)">(.*?)</tr>', html, re.S)
    assert [
        (kind, re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", body)).split()) for kind, body in rows
    ] == [
        ("part", ["10001", "健康トニック", "セット内容", "2"]),
        ("part", ["20001", "健康テープ", "セット内容", "2"]),
        ("companion", ["99001", "取扱説明書（サポートテープ）", "同梱", "1"]),
    ]
    assert 'id="order-subtotal">31,500円' in html  # 25,600 + 5,900
    assert 'id="order-shipping">650円' in html and 'id="order-cod-fee">330円' in html
    # 10% of 31,500 + 650 + 330
    assert 'id="order-tax">3,248円' in html and 'id="order-total">35,728円' in html
    assert "autofocus" not in html  # the cursor stays where the operator is

    # 郵便振替: no COD fee; an unknown code is flagged beside its line
    fields = {**after, "payment": ["postal"]}
    r = post(client, url + "/form", with_lines(fields, ("20001", "1"), ("77777", "1")))
    assert "order-cod-fee" not in r.text and "未登録の商品コードです。" in r.text


def test_remove_a_line(client: Any, world: dict[str, Any]) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("10001", "1"), ("20001", "1"))
    r = post(client, url + "/form", fields, remove="0")
    assert form_of(r.text)["code"] == ["20001", ""]


def test_confirm_refuses_bad_input_with_messages_and_writes_nothing(
    client: Any, world: dict[str, Any], database_url: str
) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = form_of(client.get(url).text)
    r = post(client, url + "/confirm", with_lines(fields, ("", "1")))
    assert r.status_code == 400 and "商品を1つ以上入力してください。" in r.text
    r = post(client, url + "/confirm", with_lines(fields, ("20001", "0")))
    assert r.status_code == 400 and "個数は1以上で入力してください。" in r.text
    assert re.search(r'id="line-0-qty"[^>]*autofocus', r.text.replace("\n", " "))
    r = post(client, url, with_lines(fields, ("20001", "x")))  # straight to 登録
    assert r.status_code == 400 and "個数は1以上で入力してください。" in r.text
    assert count(database_url, Order) == 0


def test_confirm_then_submit_records_order_and_the_calls_action(
    client: Any, world: dict[str, Any], database_url: str
) -> None:
    call_id = add_call(database_url, staff_id=world["koga"], customer_id=world["taro"])
    url = f"/customers/{world['taro']}/order?call={call_id}"
    page = client.get(url).text
    assert f'hx-post="/customers/{world["taro"]}/order/confirm?call={call_id}"' in page
    fields = with_lines(form_of(page), ("10001", "1"), ("20002", "2"))
    r = post(client, f"/customers/{world['taro']}/order/confirm?call={call_id}", fields)
    assert r.status_code == 200
    assert "この内容で受注しますか？" in r.text and "入力確認" in r.text
    assert re.search(r'id="order-f1"[^>]*autofocus', r.text) and 'data-fkey="F10"' in r.text
    confirmed = form_of(r.text)
    assert confirmed["code"] == ["10001", "20002"] and confirmed["qty"] == ["1", "2"]
    # the client's totals are never sent; a tampered price field is the operator's price only
    # when it differs from the product price it was filled from
    r = post(client, url, confirmed)
    assert r.status_code == 200
    number = re.search(r'id="order-number">(\d{8}-\d{7})<', r.text)
    assert (
        number
        and f'受注番号 <strong id="order-number">{number.group(1)}</strong> を登録しました'
        in r.text
    )
    assert "購入履歴 <kbd>F6</kbd>" in r.text and "受注一覧 <kbd>F8</kbd>" in r.text
    [order] = orders_of(database_url)
    assert order.number == number.group(1) and order.call_id == call_id
    assert order.staff_id == world["koga"]
    assert order.subtotal == 6900 + 2 * 5900 and order.total == 6900 + 11800 + 650 + 330 + (
        (11800 + 650 + 330) // 10 + 6900 * 8 // 100
    )

    async def action(s: Any) -> Action | None:
        return await s.scalar(select(Action).where(Action.order_id == order.id))

    recorded = db_run(database_url, action)
    assert recorded is not None
    assert (recorded.kind, recorded.call_id, recorded.staff_id, recorded.amount) == (
        "order",
        call_id,
        world["koga"],
        order.total,
    )
    assert recorded.content == "受注 健康トニック 1個 ほか"

    # a double click / retry with the same key: the same order, nothing new
    again = post(client, url, confirmed)
    assert again.status_code == 200 and number.group(1) in again.text
    assert "すでに登録されています" in again.text
    assert count(database_url, Order) == 1 and count(database_url, Action) == 1


def test_another_operators_call_is_not_recorded(
    client: Any, world: dict[str, Any], database_url: str
) -> None:
    theirs = add_call(database_url, staff_id=world["yamada"], customer_id=world["taro"])
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("20001", "1"))
    r = post(client, f"{url}?call={theirs}", fields)
    assert r.status_code == 200
    [order] = orders_of(database_url)
    assert order.call_id is None


def test_back_from_the_confirmation_keeps_everything(client: Any, world: dict[str, Any]) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("40001", "3"))
    fields["note"] = ["玄関前に置き配"]
    fields["time_slot"] = ["1820"]
    confirmed = form_of(post(client, url + "/confirm", fields).text)
    r = post(client, url + "/form", confirmed, back="1")
    back = form_of(r.text)
    assert back["code"] == ["40001", ""] and back["qty"] == ["3", "1"]
    assert back["note"] == ["玄関前に置き配"] and back["time_slot"] == ["1820"]
    assert back["idempotency_key"] == fields["idempotency_key"]
    assert re.search(r'id="line-0-code"[^>]*autofocus', r.text.replace("\n", " "))


def test_subscription_slip_shows_its_fields_and_makes_a_subscription(
    client: Any, world: dict[str, Any], database_url: str
) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("10001", "1"))
    fields["slip_type"] = ["subscription"]
    r = post(client, url + "/form", fields)
    assert 'id="order-interval"' in r.text and 'id="order-dom"' in r.text
    assert "次回お届け" in r.text
    fields = form_of(r.text)
    fields["interval"] = ["m2"]
    fields["day_of_month"] = ["15"]
    r = post(client, url, fields)
    assert r.status_code == 200, r.text
    [order] = orders_of(database_url)

    async def sub(s: Any) -> tuple[Subscription | None, int]:
        found = await s.scalar(select(Subscription))
        items = await s.scalar(select(func.count()).select_from(SubscriptionItem))
        return found, int(items or 0)

    found, items = db_run(database_url, sub)
    assert found is not None and items == 1
    assert (found.interval_n, found.day_of_month) == (2, 15)
    assert order.slip_type == "subscription" and order.subscription_id == found.id


def test_reorder_asks_first_then_prefills(
    client: Any, world: dict[str, Any], database_url: str
) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("10001", "1"), ("20002", "2"))
    fields["carrier"] = ["sagawa"]
    fields["payment"] = ["bank"]
    assert post(client, url, fields).status_code == 200
    [old] = orders_of(database_url)

    r = client.get(f"{url}?reorder={old.id}")
    assert r.status_code == 200
    assert "受注入力を行いますか？" in r.text and old.number in r.text
    assert "健康トニック" in r.text and "取扱説明書" not in r.text  # the order's own products
    yes = re.search(r'id="order-f1" class="button primary" href="([^"]+)"', r.text)
    assert yes
    r = client.get(yes.group(1).replace("&amp;", "&"))
    prefilled = form_of(r.text)
    assert prefilled["code"] == ["10001", "20002", ""] and prefilled["qty"] == ["1", "2", "1"]
    assert prefilled["carrier"] == ["sagawa"] and prefilled["payment"] == ["bank"]
    assert prefilled["idempotency_key"] != fields["idempotency_key"]
    assert re.search(r'id="line-2-code"[^>]*autofocus', r.text.replace("\n", " "))

    # someone else's order is not offered
    r = client.get(f"/customers/{world['other']}/order?reorder={old.id}&go=1")
    assert "この顧客の受注ではないか、見つかりません" in r.text
    assert form_of(r.text)["code"] == [""]


def test_order_from_a_subscription(client: Any, world: dict[str, Any], database_url: str) -> None:
    async def make(s: Any) -> int:
        from app.masters.models import Product

        tea = await s.scalar(select(Product).where(Product.code == "50001"))
        sub = Subscription(
            customer_id=world["taro"], start_month=dt.date(2025, 1, 1), payment_method="card"
        )
        sub.items = [SubscriptionItem(product_id=tea.id, quantity=2, unit_price=tea.price)]
        s.add(sub)
        await s.flush()
        return int(sub.id)

    sub_id = db_run(database_url, make)
    r = client.get(f"/customers/{world['taro']}/order?subscription={sub_id}")
    fields = form_of(r.text)
    assert fields["code"] == ["50001", ""] and fields["qty"] == ["2", "1"]
    assert fields["payment"] == ["card"]
    r = client.get(f"/customers/{world['other']}/order?subscription={sub_id}")
    assert "この顧客の定期ではないか、見つかりません" in r.text


def test_product_suggestions(client: Any, world: dict[str, Any]) -> None:
    r = client.get("/products/suggest", params={"q": "けんこう"})
    assert r.status_code == 200
    codes = re.findall(r'data-code="(\d+)"', r.text)
    assert codes[:2] == ["10001", "10002"] and "健康トニック" in r.text
    r = client.get("/products/suggest", params={"q": "2000"})
    assert re.findall(r'data-code="(\d+)"', r.text) == ["20001", "20002", "20003"]


def test_without_htmx_the_steps_are_whole_pages(client: Any, world: dict[str, Any]) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("20001", "1"))
    token = csrf_of(client)
    r = client.post(url + "/confirm", data={**fields, "csrf_token": token})
    assert (
        r.status_code == 200 and "monitor-head" in r.text and "この内容で受注しますか？" in r.text
    )
    r = client.post(url, data={**form_of(r.text), "csrf_token": token})
    assert r.status_code == 200 and "monitor-head" in r.text and "を登録しました" in r.text


def test_unknown_customer(client: Any, world: dict[str, Any]) -> None:
    assert client.get("/customers/999999/order").status_code == 404
    r = post(client, "/customers/999999/order/form", {"code": ["20001"]})
    assert r.status_code == 404
