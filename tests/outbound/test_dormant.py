"""長期放置顧客一覧: the query against hand-built histories (each action kind, start date, rank,
region, DM, last product), merged and 電話不可 customers, the triggers that keep the last
action per kind, the screen, the CSV and a work list made from it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer
from app.db import make_engine, make_sessionmaker
from app.masters.models import Product, Rank
from app.orders.models import Order, OrderLine
from app.outbound import service
from app.outbound.dormant import DormantFilters, count_dormant, dormant_page
from app.outbound.models import LastAction, OutboundEntry
from app.responses.models import Action
from tests.conftest import csrf_of, login

JST = dt.timezone(dt.timedelta(hours=9))
BASE = dt.date(2026, 6, 30)
REGISTERED = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def jst(y: int, m: int, d: int, h: int = 12) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=JST).astimezone(dt.UTC)


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            yield s
    finally:
        await engine.dispose()


async def customer(s: AsyncSession, code: str, name: str, **kw: Any) -> int:
    c = Customer(
        code=code,
        name=name,
        kana=kw.pop("kana", ""),
        prefecture=kw.pop("prefecture", "佐賀県"),
        city="佐賀市",
        street="鍋島3-2",
        flags={},
        created_at=kw.pop("created_at", REGISTERED),
        **kw,
    )
    s.add(c)
    await s.flush()
    return c.id


async def act(s: AsyncSession, cid: int, kind: str, at: dt.datetime, **kw: Any) -> int:
    a = Action(customer_id=cid, kind=kind, occurred_at=at, content=kw.pop("content", kind), **kw)
    s.add(a)
    await s.flush()
    return a.id


async def order(s: AsyncSession, cid: int, at: dt.datetime, product: Product, qty: int) -> None:
    o = Order(
        number=f"T{cid}-{at:%m%d}",
        customer_id=cid,
        received_on=at.astimezone(JST).date(),
        total=product.price * qty,
    )
    s.add(o)
    await s.flush()
    s.add(
        OrderLine(
            order_id=o.id,
            product_id=product.id,
            product_code=product.code,
            product_name=product.name,
            quantity=qty,
            unit_price=product.price,
            amount=product.price * qty,
        )
    )
    await act(s, cid, "order", at, order_id=o.id, amount=o.total)


@pytest.fixture
async def world(session: AsyncSession) -> dict[str, int]:
    s = session
    gold = Rank(code="G", name="ゴールド")
    tape = Product(code="P1", name="健康テープ1個", price=5800)
    tonic = Product(code="P2", name="健康トニック1個", price=6900)
    s.add_all([gold, tape, tonic])
    await s.flush()
    ids: dict[str, int] = {"gold": gold.id, "tape": tape.id, "tonic": tonic.id}
    # 佐賀: a recent call, an old DM, never an order or a response.
    ids["saga"] = await customer(s, "C001", "佐賀 太郎", kana="サガタロウ", rank_id=gold.id)
    await act(s, ids["saga"], "dm", jst(2026, 1, 10))
    await act(s, ids["saga"], "call_in", jst(2026, 6, 20))
    # 北田: one order exactly 30 days before the start date (late evening JST).
    ids["kitada"] = await customer(s, "C002", "北田 君子", kana="キタダキミコ", prefecture="宮崎県")
    await order(s, ids["kitada"], jst(2026, 5, 31, 23), tape, 2)
    # 小村: an order long ago, then a response; an older call inserted afterwards (import).
    ids["komura"] = await customer(s, "C003", "小村 信二", kana="コムラシンジ", dm_required=False)
    await order(s, ids["komura"], jst(2025, 12, 10), tonic, 1)
    await act(s, ids["komura"], "response", jst(2026, 3, 8), content="問合せ")
    await act(s, ids["komura"], "call_out", jst(2024, 1, 1))
    # 佐野: nothing at all since registration.
    ids["sano"] = await customer(s, "C004", "佐野 小枝子", kana="サノサエコ")
    # 小坂: merged into 佐野 — never listed.
    ids["kosaka"] = await customer(s, "C005", "小坂 直子", kana="コサカナオコ")
    await act(s, ids["kosaka"], "dm", jst(2025, 1, 1))
    kosaka = await s.get(Customer, ids["kosaka"])
    assert kosaka is not None
    kosaka.merged_into_id = ids["sano"]
    # 小城: asked not to be called (電話不可), old DM.
    ids["ogi"] = await customer(s, "C006", "小城 花子", kana="オギハナコ", no_call=True)
    await act(s, ids["ogi"], "dm", jst(2025, 6, 1))
    # 新井: registered last week — not dormant yet.
    ids["arai"] = await customer(
        s, "C007", "新井 一郎", kana="アライイチロウ", created_at=jst(2026, 6, 25)
    )
    await s.commit()
    return ids


async def names(s: AsyncSession, **kw: Any) -> list[str]:
    f = DormantFilters(base_date=kw.pop("base_date", BASE), **kw)
    return [r.name for r in (await dormant_page(s, filters=f)).rows]


async def test_any_kind_most_dormant_first(session: AsyncSession, world: dict[str, int]) -> None:
    # 未指定: the last action of any kind; never-acted customers count from registration.
    assert await names(session) == ["佐野 小枝子", "小城 花子", "小村 信二", "北田 君子"]
    page = await dormant_page(session, filters=DormantFilters(base_date=BASE))
    by_name = {r.name: r for r in page.rows}
    assert by_name["北田 君子"].days == 30
    assert by_name["北田 君子"].last_label == "受注"
    assert by_name["北田 君子"].last_order_on == dt.date(2026, 5, 31)
    assert by_name["北田 君子"].product == "健康テープ1個"
    assert (by_name["北田 君子"].quantity, by_name["北田 君子"].amount) == (2, 11600)
    assert by_name["小村 信二"].last_label == "対応"
    assert by_name["小村 信二"].last_at == jst(2026, 3, 8)  # the older call did not win
    assert by_name["佐野 小枝子"].last_at is None and by_name["佐野 小枝子"].last_label == ""
    assert by_name["小城 花子"].no_call
    assert await count_dormant(session, filters=DormantFilters(base_date=BASE)) == 4
    # One day more: 北田's order is too recent.
    assert "北田 君子" not in await names(session, days=31)


async def test_each_kind(session: AsyncSession, world: dict[str, int]) -> None:
    every = ["佐野 小枝子", "新井 一郎"]
    # 電話: 佐賀 called in ten days ago; 小村's last call is from 2024.
    calls = await names(session, group="call")
    assert "佐賀 太郎" not in calls and "小村 信二" in calls and "小城 花子" in calls
    # DM: 佐賀's DM is from January.
    assert "佐賀 太郎" in await names(session, group="dm")
    # 受注: 北田 ordered 30 days ago (dormant at 30, not at 31); 佐賀 never ordered.
    orders = await names(session, group="order")
    assert {"北田 君子", "佐賀 太郎", "小村 信二"} <= set(orders)
    assert "北田 君子" not in await names(session, group="order", days=31)
    # 対応: only 小村 had a response (March).
    responses = await names(session, group="response")
    assert "小村 信二" in responses and "佐賀 太郎" in responses
    for group in ("any", "call", "dm", "order", "response"):
        listed = await names(session, group=group, days=1)
        assert "小坂 直子" not in listed  # merged: never
        assert "新井 一郎" not in await names(session, group=group)  # registered 5 days ago
        assert every[0] in listed


async def test_start_date_and_filters(session: AsyncSession, world: dict[str, int]) -> None:
    # A month later 佐賀's call (6/20) is 40 days old.
    assert "佐賀 太郎" in await names(session, base_date=dt.date(2026, 7, 30), group="call")
    assert "佐賀 太郎" not in await names(session, base_date=dt.date(2026, 7, 15), group="call")
    assert await names(session, group="dm", rank_id=world["gold"]) == ["佐賀 太郎"]
    assert await names(session, prefecture="宮崎県") == ["北田 君子"]
    assert await names(session, dm="0") == ["小村 信二"]
    assert await names(session, group="dm", product_id=world["tonic"]) == ["小村 信二"]
    assert "小城 花子" not in await names(session, exclude_no_call=True)
    assert await names(session, sort="code") == [
        "北田 君子",
        "小村 信二",
        "佐野 小枝子",
        "小城 花子",
    ]
    assert await names(session, sort="last_order") == [
        "北田 君子",
        "小村 信二",
        "佐野 小枝子",
        "小城 花子",
    ]


async def test_last_actions_follow_every_writer(
    session: AsyncSession, world: dict[str, int]
) -> None:
    """The triggers keep one row per group: a new action moves it, an older one does not."""
    cid = world["sano"]
    rows = (await session.scalars(select(LastAction).where(LastAction.customer_id == cid))).all()
    assert {r.grp for r in rows} == {"any", "call", "dm", "order", "response"}
    assert all(r.action_id is None for r in rows)
    newer = await act(session, cid, "catalog", jst(2026, 6, 29))
    await act(session, cid, "call_out", jst(2026, 6, 1))
    await session.commit()
    session.expire_all()
    rows = (await session.scalars(select(LastAction).where(LastAction.customer_id == cid))).all()
    got = {r.grp: r for r in rows}
    assert got["any"].action_id == newer and got["any"].kind == "catalog"
    assert got["call"].kind == "call_out" and got["dm"].action_id is None
    assert "佐野 小枝子" not in await names(session)
    assert "佐野 小枝子" in await names(session, group="dm")


async def test_work_list_never_holds_no_call(
    session: AsyncSession, world: dict[str, int], make_staff: Callable[..., int]
) -> None:
    op = make_staff("op1", name="古賀 雅美")
    with pytest.raises(service.OutboundInputError) as err:
        await service.create_list(
            session,
            name="",
            filters=DormantFilters(base_date=BASE),
            operator_ids=[],
            created_by=None,
        )
    assert set(err.value.errors) == {"name", "operators"}
    lst = await service.create_list(
        session,
        name="6月休眠",
        filters=DormantFilters(base_date=BASE),
        operator_ids=[op],
        created_by=None,
    )
    entries = (
        await session.scalars(
            select(OutboundEntry)
            .where(OutboundEntry.list_id == lst.id)
            .order_by(OutboundEntry.position)
        )
    ).all()
    assert [e.customer_id for e in entries] == [world["sano"], world["komura"], world["kitada"]]
    # 佐野 asks not to be called after the list was made: skipped, never offered.
    sano = await session.get(Customer, world["sano"])
    assert sano is not None
    sano.no_call = True
    first = await service.next_entry(session, list_id=lst.id, staff_id=op)
    assert first is not None and first.customer_id == world["komura"]
    # The same operator gets the same entry back until a result is entered.
    again = await service.next_entry(session, list_id=lst.id, staff_id=op)
    assert again is not None and again.id == first.id
    with pytest.raises(service.OutboundInputError) as err:
        await service.record_result(
            session, entry_id=first.id, staff_id=op, result="callback", callback_at=None
        )
    assert "callback_at" in err.value.errors
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    entry, action = await service.record_result(
        session, entry_id=first.id, staff_id=op, result="callback", callback_at=soon, note="夕方に"
    )
    assert (entry.status, entry.result, entry.attempts) == ("callback", "再コール", 1)
    assert (action.kind, action.result, action.customer_id) == (
        "call_out",
        "再コール",
        world["komura"],
    )
    nxt = await service.next_entry(session, list_id=lst.id, staff_id=op)
    assert nxt is not None and nxt.customer_id == world["kitada"]
    done, _ = await service.record_result(
        session, entry_id=nxt.id, staff_id=op, result="connected", callback_at=None
    )
    assert done.status == "done"
    assert await service.next_entry(session, list_id=lst.id, staff_id=op) is None
    # The call-back passes its time: an alert (and the entry is offered again).
    entry.callback_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    await session.flush()
    due = await service.overdue_callbacks(session, grace_minutes=0)
    assert [d.customer_name for d in due] == ["小村 信二"]
    assert await service.overdue_callbacks(session, grace_minutes=10) == []
    back = await service.next_entry(session, list_id=lst.id, staff_id=op)
    assert back is not None and back.id == entry.id
    [summary] = await service.lists_for(session, staff_id=op, everyone=False)
    assert (summary.total, summary.done, summary.due) == (3, 1, 1)
    assert summary.operators == ["古賀 雅美"]


def test_screen_csv_and_work_list(
    client: Any, make_staff: Callable[..., int], database_url: str, world: dict[str, int]
) -> None:
    sv = make_staff("sv", role="supervisor", name="鈴木 リーダー")
    op = make_staff("op1", name="古賀 雅美")
    assert login(client, "sv").status_code == 303
    page = client.get("/dormant", params={"start": "2026/06/30", "group": "any", "days": "30"})
    assert page.status_code == 200
    text = page.text
    for col in (
        "顧客名",
        "コード",
        "住所",
        "最終受注日",
        "最終受注商品名",
        "個数",
        "金額",
        "最終アクション日",
        "放置日数",
        "最終アクション内容",
    ):
        assert col in text
    assert "北田 君子" in text and "健康テープ1個" in text and "11,600" in text
    assert "小坂 直子" not in text and "新井 一郎" not in text
    assert "電話不可" in text
    bad = client.get("/dormant", params={"start": "2026/13/40", "days": "abc"})
    assert bad.status_code == 400
    assert "開始日付は YYYY/MM/DD" in bad.text and "放置日数は 1 以上" in bad.text
    count = client.get("/dormant/count", params={"start": "2026/06/30"})
    assert "4 件" in count.text
    csv = client.get("/dormant.csv", params={"start": "2026/06/30"})
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("顧客名,コード,住所,最終受注日")
    assert len(lines) == 5 and "小城 花子" in csv.text
    # A work list: 小城 (電話不可) is left out.
    token = csrf_of(client)
    made = client.post(
        "/outbound/lists",
        data={
            "csrf_token": token,
            "start": "2026/06/30",
            "days": "30",
            "list_name": "6月休眠",
            "operators": [str(op)],
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    listing = client.get("/outbound").text
    assert "6月休眠" in listing and "古賀 雅美" in listing
    del sv
