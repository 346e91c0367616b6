"""Typed dates outside a sensible window are refused with a message beside the field and write
nothing (お届け予定日 9999/12/31 was stored); absurd dates in a filter are a message, never
a 500."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from app.dates import EARLIEST, LATEST, add_years, parse_date, window_error
from app.masters.models import Ad
from app.orders.models import Order
from app.responses.models import Response as ResponseRow
from app.subscriptions.changes import SubscriptionInputError
from app.web import JST
from tests.conftest import csrf_of, login
from tests.factories import add_customer, add_masters
from tests.masters.helpers import db_run, error_of
from tests.orders.test_order_routes import form_of
from tests.subscriptions.test_schedule import _plan, _sub

HX = {"HX-Request": "true"}
D = dt.date


def count(url: str, model: Any) -> int:
    async def fn(s: Any) -> int:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)

    return int(db_run(url, fn))


def test_one_parser_for_every_typed_date() -> None:
    today = D(2026, 12, 7)
    for text in (
        "2025/04/07",
        "2025-4-7",
        "2025.4.7",
        "2025年4月7日",
        "20250407",
        "２０２５/４/７",
    ):
        assert parse_date(text) == D(2025, 4, 7), text
    assert parse_date("4/7", today=today) == D(2027, 4, 7)  # more than half a year back
    assert parse_date("1207", today=today) == D(2026, 12, 7)
    assert parse_date("  ") is None
    for bad in ("9999/12/31", "0001/01/01", "1899/12/31", "2200/01/01", "2025/02/30", "4/7", "x"):
        with pytest.raises(ValueError):
            parse_date(bad)
    assert parse_date(f"{EARLIEST:%Y/%m/%d}") == EARLIEST
    assert parse_date(f"{LATEST:%Y%m%d}") == LATEST
    assert add_years(D(2024, 2, 29), 1) == D(2025, 2, 28)
    assert window_error(D(2027, 12, 7), around=today, label="お届け予定日", base="受付日") == ""
    assert (
        window_error(D(2027, 12, 8), around=today, label="お届け予定日", base="受付日")
        == "お届け予定日は受付日の前後1年以内の日付を入力してください。"
    )


@pytest.fixture
def operator(client: Any, make_staff: Callable[..., int], database_url: str) -> Any:
    add_masters(database_url)
    make_staff("op", extension="201")
    login(client, "op")
    return client


def test_an_order_delivered_in_9999_is_refused_beside_the_field(
    operator: Any, database_url: str
) -> None:
    client = operator
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    url = f"/customers/{taro}/order"
    fields = form_of(client.get(url).text)
    fields.update(code=["10001"], qty=["1"], price=[""], base=[""])
    today = dt.datetime.now(JST).date()
    cases = {
        "deliver_on": ("9999/12/31", "お届け予定日を正しく入力してください"),
        "ship_on": (f"{add_years(today, 2):%Y/%m/%d}", "出荷予定日は受付日の前後1年以内"),
    }
    for name, (value, message) in cases.items():
        data = {**fields, name: [value], "csrf_token": [csrf_of(client)]}
        r = client.post(url + "/confirm", data=data, headers=HX)
        assert r.status_code == 400, r.text[:300]
        assert message in r.text
        r = client.post(url, data=data, headers=HX)
        assert r.status_code == 400 and message in r.text
    far = {**fields, "deliver_on": [f"{add_years(today, 1) + dt.timedelta(days=9):%Y/%m/%d}"]}
    r = client.post(url + "/confirm", data={**far, "csrf_token": [csrf_of(client)]}, headers=HX)
    assert r.status_code == 400 and "お届け予定日は受付日の前後1年以内" in r.text
    assert count(database_url, Order) == 0


def test_a_master_period_in_9999_is_refused_beside_the_field(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    add_masters(database_url)
    make_staff("office", role="backoffice")
    login(client, "office")
    before = count(database_url, Ad)
    for starts, message in (
        ("2199/12/31", "開始日は 1990/01/01 から"),
        ("1989/12/31", "開始日は 1990/01/01 から"),
        ("9999/12/31", "開始日は 2025/04/01 の形で入力してください。"),
    ):
        r = client.post(
            "/masters/ads/new",
            data={
                "csrf_token": csrf_of(client),
                "code": "899",
                "name": "試験広告",
                "starts_on": starts,
                "cost": "0",
                "active": "1",
            },
        )
        assert r.status_code == 422, r.text[:300]
        assert message in error_of(r.text, "starts_on")
    assert count(database_url, Ad) == before


async def test_a_subscription_cannot_start_or_pause_past_a_year_ahead() -> None:
    today = D(2024, 1, 20)
    with pytest.raises(SubscriptionInputError) as e:
        await _plan(_sub(), today, op="pause", until="9999/12")
    assert e.value.errors == {"until": "休止は1年先（2025/01）までの月を指定してください。"}
    assert (await _plan(_sub(), today, op="pause", until="2025/01"))["status"] == "paused"


def test_a_response_dated_years_back_is_refused(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga")
    login(client, "koga")
    for when, message in (
        ("1999/01/01 10:00", "対応日時は "),
        ("9999/12/31 10:00", "対応日時は 2015/01/01 10:30 の形式で入力してください。"),
    ):
        r = client.post(
            f"/customers/{cid}/responses",
            data={
                "csrf_token": csrf_of(client),
                "responded_at": when,
                "category": "問合せ",
                "channel": "電話",
                "content": "使用方法の問合せ",
                "answer": "",
                "status": "done",
            },
            headers={**HX, "X-CSRF-Token": csrf_of(client)},
        )
        assert r.status_code == 400 and message in r.text, r.text[:300]
    assert count(database_url, ResponseRow) == 0


@pytest.mark.parametrize(
    ("role", "url"),
    [
        ("supervisor", "/orders?from=9999/12/31&to=9999/12/31"),
        ("supervisor", "/orders.csv?from=0001/01/01"),
        ("supervisor", "/dormant?start=9999/12/31"),
        ("supervisor", "/dormant.csv?start=0001/01/01"),
        ("supervisor", "/responses/today?date=9999/12/31"),
        ("supervisor", "/responses/today.pdf?date=0001/01/01"),
        ("backoffice", "/subscriptions?date=9999/12/31"),
        ("backoffice", "/subscriptions.csv?date=9999/12/31"),
        ("supervisor", "/calls?date=9999-12-31"),
        ("operator", "/customers/{cid}/responses?from=0001/01/01&to=9999/12/31"),
    ],
)
def test_absurd_dates_in_filters_are_a_message_not_a_500(
    client: Any, make_staff: Callable[..., int], database_url: str, role: str, url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("u", role=role)
    login(client, "u")
    r = client.get(url.format(cid=cid))
    assert r.status_code < 500, r.text[:300]
    if r.status_code >= 400:
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", r.text)
