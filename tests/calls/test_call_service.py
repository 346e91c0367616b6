"""Routing, look-up and lifecycle of calls, driven by CTI events on a real database."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.service import create_staff
from app.board.service import today_counts
from app.calls import service
from app.calls.models import Call, Presence
from app.calls.presence import set_presence
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, CustomerPhone
from app.db import make_engine, make_sessionmaker, transaction
from app.responses.models import Action, Response
from cti_bridge.events import ANSWERED_ELSEWHERE, CallAnswered, CallEnded, CallRinging
from cti_bridge.numbers import last8, normalise_stored


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def add_customer(s: AsyncSession, code: str, name: str, kana: str, *phones: str) -> int:
    c = Customer(
        code=code,
        name=name,
        kana=kana,
        name_key=name_key(name),
        kana_key=kana_key(kana),
        prefecture="佐賀県",
        city="佐賀市",
        street="鍋島3-2",
        alert="",
        flags={},
    )
    for i, raw in enumerate(phones):
        e164 = normalise_stored(raw).number_e164
        c.phones.append(
            CustomerPhone(raw=raw, e164=e164, last8=last8(e164), kind="home", position=i)
        )
    s.add(c)
    await s.flush()
    return c.id


@pytest.fixture
async def world(maker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with transaction(maker) as s:
        a = await create_staff(
            s, login="a", name="古賀 雅美", password="password123", extension="201"
        )
        b = await create_staff(
            s, login="b", name="山田 花子", password="password123", extension="202"
        )
        await set_presence(s, staff_id=a.id, state="available", extension="201", line="main")
        await set_presence(s, staff_id=b.id, state="available", extension="202", line="main")
        taro = await add_customer(
            s, "00000001", "佐賀 太郎", "サガ タロウ", "0952-32-6611", "090-9999-9999"
        )
        hanako = await add_customer(s, "00000002", "佐賀 花子", "サガ ハナコ", "0952-32-6611")
        lone = await add_customer(s, "00000003", "北田 君子", "キタダ キミコ", "03-1234-5678")
        return {"a": a.id, "b": b.id, "taro": taro, "hanako": hanako, "lone": lone}


def ringing(call_id: str, number: str, ext: str | None = None, raw: str = "") -> CallRinging:
    return CallRinging(
        source="sim",
        call_id=call_id,
        line="main",
        extension=ext,
        caller_raw=raw or number,
        number=number,
        withheld="" if number else "private",
    )


async def apply(maker: async_sessionmaker[AsyncSession], event: Any) -> list[service.Delivery]:
    async with transaction(maker) as s:
        return await service.handle_event(s, event=event)


async def test_call_to_an_extension_pops_only_for_its_operator(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    out = await apply(maker, ringing("c1", "+81312345678", ext="202"))
    assert len(out) == 1 and out[0].staff_ids == [world["b"]]
    html = out[0].html
    assert "北田 君子" in html and "キタダ キミコ" in html and "00000003" in html
    assert 'hx-swap-oob="afterbegin"' in html and "応答" in html


async def test_broadcast_call_first_taker_owns_it_and_others_pop_closes(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    out = await apply(maker, ringing("c2", "+81312345678"))
    assert out[0].staff_ids == [world["a"], world["b"]]
    async with transaction(maker) as s:
        call_id = (await s.scalars(select(Call.id))).one()
        first = await service.take_call(s, call_id=call_id, staff_id=world["b"])
    assert first.ok
    closes = [d for d in first.deliveries if 'hx-swap-oob="delete"' in d.html]
    assert closes and closes[0].staff_ids == [world["a"]]
    async with transaction(maker) as s:
        second = await service.take_call(s, call_id=call_id, staff_id=world["a"])
        presence = await s.get(Presence, world["b"])
    assert not second.ok and "他のオペレータが応答しました" in second.message
    assert presence is not None and presence.state == "on_call"


async def test_busy_operators_get_no_broadcast(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    async with transaction(maker) as s:
        await set_presence(s, staff_id=world["a"], state="away")
    out = await apply(maker, ringing("c3", "+81312345678"))
    assert out[0].staff_ids == [world["b"]]


async def test_pbx_answer_closes_other_pops_and_end_leaves_a_response(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    t0 = dt.datetime.now(dt.UTC)
    await apply(maker, ringing("c4", "+81312345678"))
    out = await apply(
        maker,
        CallAnswered(
            source="sim",
            call_id="c4",
            line="main",
            extension="201",
            at=t0 + dt.timedelta(seconds=3),
        ),
    )
    assert any(d.staff_ids == [world["b"]] and "delete" in d.html for d in out)
    await apply(
        maker,
        CallEnded(
            source="sim", call_id="c4", line="main", answered=True, at=t0 + dt.timedelta(seconds=95)
        ),
    )
    async with maker() as s:
        call = (await s.scalars(select(Call))).one()
        resp = (await s.scalars(select(Response))).one()
        action = (await s.scalars(select(Action))).one()
        presence = await s.get(Presence, world["a"])
    assert call.state == "ended" and call.staff_id == world["a"] and call.duration_s == 92
    assert resp.status == "open" and resp.customer_id == world["lone"] and resp.call_id == call.id
    assert action.kind == "call_in"
    assert presence is not None and presence.state == "after_call"


async def test_unanswered_call_is_missed_for_call_back(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await apply(maker, ringing("c5", "+81312345678"))
    out = await apply(
        maker,
        CallEnded(source="sim", call_id="c5", line="main", answered=False, reason="cancelled"),
    )
    assert out and "delete" in out[0].html
    async with maker() as s:
        call = (await s.scalars(select(Call))).one()
    assert call.state == "missed" and call.callback_status == "pending"


async def test_shared_home_phone_pops_a_chooser(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    out = await apply(maker, ringing("c6", "+81952326611", ext="201"))
    html = out[0].html
    assert "この番号の顧客が2名います" in html
    assert "佐賀 太郎" in html and "佐賀 花子" in html
    async with maker() as s:
        call = (await s.scalars(select(Call))).one()
    assert call.match_kind == "many" and call.customer_id is None


async def test_mobile_number_finds_the_one_customer(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    out = await apply(maker, ringing("c7", "+819099999999", ext="201"))
    assert "佐賀 太郎" in out[0].html and "佐賀 花子" not in out[0].html


async def test_last_eight_digits_match_is_flagged(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    # Same subscriber number with a different area code: only the last 8 digits agree.
    out = await apply(maker, ringing("c8", "+81612345678", ext="201"))
    assert "番号の一部一致" in out[0].html and "北田 君子" in out[0].html


async def test_unknown_number_pops_new_customer_form_with_number(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    out = await apply(maker, ringing("c9", "+81667778888", ext="201"))
    html = out[0].html
    assert "登録のない番号です" in html and 'value="06-6777-8888"' in html


async def test_withheld_caller_is_shown_as_such(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    out = await apply(maker, ringing("c10", "", ext="201", raw="P"))
    assert "非通知" in out[0].html and "登録のない番号" not in out[0].html


async def test_reconnecting_tab_gets_its_ringing_and_active_calls_only(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await apply(maker, ringing("c11", "+81312345678", ext="201"))
    await apply(maker, ringing("c12", "+81952326611", ext="202"))
    async with maker() as s:
        pops_a = await service.pops_for(s, staff_id=world["a"], ring_timeout_s=60)
        pops_b = await service.pops_for(s, staff_id=world["b"], ring_timeout_s=60)
    assert len(pops_a) == 1 and "北田 君子" in pops_a[0]
    assert len(pops_b) == 1 and "佐賀 花子" in pops_b[0]


async def test_repeated_ringing_event_does_not_pop_twice(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    assert await apply(maker, ringing("c13", "+81312345678", ext="201"))
    assert await apply(maker, ringing("c13", "+81312345678", ext="201")) == []
    # the same call ringing another extension (a ring group) pops there too
    out = await apply(maker, ringing("c13", "+81312345678", ext="202"))
    assert out[0].staff_ids == [world["b"]]


async def test_operator_who_logs_in_while_a_line_call_rings_gets_it(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    async with transaction(maker) as s:
        await set_presence(s, staff_id=world["b"], state="offline")
    out = await apply(maker, ringing("c14", "+81312345678"))
    assert out[0].staff_ids == [world["a"]]
    async with transaction(maker) as s:  # 山田 logs in (available on line main)
        await set_presence(s, staff_id=world["b"], state="available", extension="202")
    async with transaction(maker) as s:
        pops = await service.pops_for(s, staff_id=world["b"], ring_timeout_s=60)
    assert len(pops) == 1 and "北田 君子" in pops[0]
    async with maker() as s:
        call = (await s.scalars(select(Call))).one()
    assert call.targets == [world["a"], world["b"]]  # so the taker's answer closes it for both


async def test_pop_shows_rank_karte_last_order_subscriptions_and_last_response(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    from app.masters.models import Product, Rank
    from app.orders.models import Order, OrderLine
    from app.subscriptions.models import Subscription, SubscriptionItem

    async with transaction(maker) as s:
        rank = Rank(code="P", name="プラチナ", sort_order=1)
        tonic = Product(code="10001", name="健康トニック", price=6900, subscribable=True)
        tape = Product(code="20001", name="健康テープ", price=5800)
        s.add_all([rank, tonic, tape])
        await s.flush()
        c = await s.get(Customer, world["lone"])
        assert c is not None
        c.rank_id = rank.id
        c.karte = "右ひざの痛み"
        old = Order(number="1", customer_id=c.id, received_on=dt.date(2024, 1, 5), total=100)
        new = Order(number="2", customer_id=c.id, received_on=dt.date(2025, 4, 1), total=13530)
        new.lines = [
            OrderLine(
                position=0,
                product_code="20001",
                product_name="健康テープ",
                quantity=2,
                unit_price=5800,
                amount=11600,
            ),
            OrderLine(
                position=1,
                product_code="10001",
                product_name="健康トニック",
                quantity=1,
                unit_price=6900,
                amount=6900,
            ),
        ]
        sub = Subscription(
            customer_id=c.id,
            start_month=dt.date(2024, 12, 1),
            interval_n=2,
            day_of_month=10,
            next_date=dt.date(2025, 6, 10),
        )
        sub.items = [SubscriptionItem(product_id=tonic.id, quantity=1)]
        s.add_all([old, new, sub])
        s.add(
            Response(
                customer_id=c.id,
                category="クレーム",
                content="説明書が入っていなかった",
                responded_at=dt.datetime(2025, 4, 25, 3, 0, tzinfo=dt.UTC),
            )
        )
        s.add(
            Response(
                customer_id=c.id,
                category="問合せ",
                content="使用方法の問合せ",
                responded_at=dt.datetime(2025, 5, 1, 3, 0, tzinfo=dt.UTC),
            )
        )
    html = (await apply(maker, ringing("c15", "+81312345678", ext="201")))[0].html
    assert "プラチナ" in html and "カルテあり" in html and "右ひざ" not in html
    assert "2025/04/01 健康テープ×2、健康トニック×1 ¥13,530" in html
    assert "健康トニック×1（2ヶ月ごと・次回 06/10）" in html
    assert "2025/05/01 問合せ 使用方法の問合せ" in html


async def test_first_ring_pops_before_the_call_is_written(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    seen: list[tuple[list[int], str, int]] = []

    async def push(deliveries: list[service.Delivery]) -> None:
        async with maker() as other:  # what another connection sees at this moment
            rows = len((await other.scalars(select(Call))).all())
        seen.extend((d.staff_ids, d.html, rows) for d in deliveries)

    async with transaction(maker) as s:
        rest = await service.handle_event(
            s, event=ringing("c16", "+81312345678", ext="201"), push=push
        )
    assert rest == []  # everything went out early
    ((targets, html, rows_then),) = seen
    assert targets == [world["a"]] and "北田 君子" in html and rows_then == 0
    key = service.pop_key("sim", "c16")
    assert f'id="pop-{key}"' in html
    async with maker() as s:
        assert (await s.scalars(select(Call.source_call_id))).all() == ["c16"]


async def test_repeated_first_ring_of_a_call_already_over_sends_no_pop(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    """A PBX resending ``ringing`` to a restarted (or another) app process: the process has
    never seen the call, but the database has, and it is over: nothing pops."""
    await apply(maker, ringing("c20", "+81312345678", ext="201"))
    await apply(maker, CallEnded(source="sim", call_id="c20", line="main", reason="cancelled"))
    pushed: list[service.Delivery] = []

    async def push(deliveries: list[service.Delivery]) -> None:
        pushed.extend(deliveries)

    for _ in range(2):
        async with transaction(maker) as s:
            rest = await service.handle_event(
                s, event=ringing("c20", "+81312345678", ext="201"), push=push
            )
        assert rest == [] and pushed == []
    async with maker() as s:
        call = (await s.scalars(select(Call))).one()
    assert call.state == "missed" and call.targets == [world["a"]]


async def test_early_pop_of_a_call_that_turns_out_over_is_closed(
    maker: async_sessionmaker[AsyncSession],
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race: the call is written as over by another process between the look-up and the
    INSERT. The early pop went out; it is closed at once (not on the owner's screen)."""
    await apply(maker, ringing("c21", "+81312345678"))
    async with transaction(maker) as s:
        call_id = (await s.scalars(select(Call.id))).one()
        assert (await service.take_call(s, call_id=call_id, staff_id=world["b"])).ok
    real = service._ring_lookup

    async def stale_lookup(*args: Any, **kw: Any) -> Any:
        targets, match, cards, _existing = await real(*args, **kw)
        return targets, match, cards, None  # as if read before the other process wrote

    monkeypatch.setattr(service, "_ring_lookup", stale_lookup)
    pushed: list[service.Delivery] = []

    async def push(deliveries: list[service.Delivery]) -> None:
        pushed.extend(deliveries)

    async with transaction(maker) as s:
        rest = await service.handle_event(s, event=ringing("c21", "+81312345678"), push=push)
    # The early pop went to the available operator (b is on the call) …
    assert [d.staff_ids for d in pushed] == [[world["a"]]]
    key = service.pop_key("sim", "c21")  # … and is closed again.
    assert [(d.staff_ids, d.html) for d in rest] == [
        ([world["a"]], f'<div id="pop-{key}" hx-swap-oob="delete"></div>')
    ]


async def test_answered_elsewhere_ends_the_call_without_a_miss(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    """SIP "Call completed elsewhere" for a call nobody of ours took: it ends as 他で応答 —
    not missed, no call-back, no open 対応履歴; the customer's history has the call."""
    t0 = dt.datetime.now(dt.UTC)
    await apply(maker, ringing("c22", "+81312345678"))
    out = await apply(
        maker,
        CallEnded(
            source="sim",
            call_id="c22",
            line="main",
            answered=True,
            reason=ANSWERED_ELSEWHERE,
            at=t0 + dt.timedelta(seconds=4),
        ),
    )
    key = service.pop_key("sim", "c22")
    assert [(d.staff_ids, d.html) for d in out] == [
        ([world["a"], world["b"]], f'<div id="pop-{key}" hx-swap-oob="delete"></div>')
    ]
    async with maker() as s:
        call = (await s.scalars(select(Call))).one()
        responses = (await s.scalars(select(Response))).all()
        action = (await s.scalars(select(Action))).one()
        counts = await today_counts(s)
    assert call.state == "ended" and call.staff_id is None and call.callback_status == ""
    assert call.ended_at is not None and call.answered_at is not None
    assert service.answered_elsewhere(call)
    assert responses == []
    assert action.customer_id == world["lone"] and action.content == "他で応答"
    assert (counts.inbound, counts.answered, counts.missed, counts.elsewhere) == (1, 1, 0, 1)
    # A repeated CANCEL changes nothing.
    again = CallEnded(
        source="sim", call_id="c22", line="main", answered=True, reason=ANSWERED_ELSEWHERE
    )
    assert await apply(maker, again) == []


async def test_answered_elsewhere_keeps_a_call_our_operator_took(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    """The operator pressed 応答 and picked up their own phone: to the SIP monitor leg that is
    "elsewhere" too. The call goes on; it is theirs."""
    await apply(maker, ringing("c23", "+81312345678"))
    async with transaction(maker) as s:
        call_id = (await s.scalars(select(Call.id))).one()
        assert (await service.take_call(s, call_id=call_id, staff_id=world["a"])).ok
    ended = CallEnded(
        source="sim", call_id="c23", line="main", answered=True, reason=ANSWERED_ELSEWHERE
    )
    assert await apply(maker, ended) == []
    async with maker() as s:
        call = (await s.scalars(select(Call))).one()
    assert call.state == "answered" and call.staff_id == world["a"] and call.ended_at is None
