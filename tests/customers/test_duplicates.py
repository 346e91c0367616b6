"""名寄せ (M6): duplicate candidates before registration, the batch list, and merging."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditLog
from app.calls.models import Call
from app.config import Settings
from app.customers.duplicates import (
    SAME_EMAIL,
    SAME_KANA,
    SAME_NAME,
    SAME_PHONE,
    SAME_PHONE_TAIL,
    DuplicatesFound,
    duplicate_groups,
    find_candidates,
)
from app.customers.history import customer_history
from app.customers.models import Customer, CustomerEmail, CustomerPhone, ShipTo
from app.customers.service import (
    CustomerInputError,
    find_by_number,
    register_customer,
    search_customers,
)
from app.db import make_engine, make_sessionmaker, transaction
from app.merge.service import merge_customers, plan_merge
from app.orders.models import Order
from app.responses.models import Action
from app.responses.models import Response as Resp
from app.subscriptions.models import Subscription
from tests.conftest import csrf_of, login
from tests.factories import add_customer


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def count(maker: async_sessionmaker[AsyncSession], model: Any, *where: Any) -> int:
    async with maker() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- candidates ---------------------------------------------------------------------------


async def test_candidates_by_phone_name_kana_and_email_never_merged_ones(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    hanako = add_customer(database_url, "佐賀 花子", "サガ ハナコ", "0952-32-6611")
    namesake = add_customer(database_url, "佐賀太郎", "サガ タロウ", "03-1111-2222")
    kana_only = add_customer(database_url, "嵯峨 太郎", "さが たろう", "06-1111-2222")
    tail = add_customer(database_url, "山田 一郎", "ヤマダ イチロウ", "0552-32-6611")
    mailer = add_customer(database_url, "北田 君子", "キタダ キミコ", "092-111-2222")
    add_customer(database_url, "北田 君子", "キタダ キミコ", "092-333-4444")  # no match
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", merged_into_id=taro)
    async with transaction(maker) as s:
        s.add(CustomerEmail(customer_id=mailer, address="saga@example.jp"))

    async with maker() as s:
        found = await find_candidates(
            s,
            name="佐賀　太郎",  # a full-width space: the same name
            kana="ｻｶﾞ ﾀﾛｳ",  # half-width: the same kana
            phones=["０９５２３２６６１１"],
            email="Saga@Example.jp",
        )
    reasons = {c.id: c.reasons for c in found}
    assert reasons == {
        taro: [SAME_PHONE, SAME_NAME, SAME_KANA],
        hanako: [SAME_PHONE],
        namesake: [SAME_NAME, SAME_KANA],
        kana_only: [SAME_KANA],
        tail: [SAME_PHONE_TAIL],
        mailer: [SAME_EMAIL],
    }
    assert found[0].id == taro  # the strongest match first
    first = found[0].card
    assert (first.name, first.code, first.phones[0][0]) == (
        "佐賀 太郎",
        f"{taro:08d}",
        "0952-32-6611",
    )

    async with maker() as s:
        assert await find_candidates(s, name="大阪 一郎", kana="", phones=["0612345678"]) == []


async def test_registration_stops_at_candidates_and_writes_nothing(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    before = (await count(maker, Customer), await count(maker, AuditLog))
    with pytest.raises(DuplicatesFound) as caught:
        async with transaction(maker) as s:
            await register_customer(
                s,
                name="佐賀 次郎",
                kana="サガ ジロウ",
                phone="0952-32-6611",
                staff_id=None,
                check_duplicates=True,
            )
    assert [c.id for c in caught.value.candidates] == [taro]
    assert (await count(maker, Customer), await count(maker, AuditLog)) == before

    # Registered past the candidates the operator saw: saved with address and e-mail.
    async with transaction(maker) as s:
        jiro = await register_customer(
            s,
            name="佐賀 次郎",
            kana="さが じろう",
            phone="0952-32-6611",
            staff_id=None,
            postcode="８４０００５４",
            prefecture="佐賀県",
            city="佐賀市",
            street="水ケ江1-1",
            email="Jiro@Example.jp",
            check_duplicates=True,
            known_duplicates={taro},
        )
        jiro_id = jiro.id
    async with maker() as s:
        saved = await s.get(Customer, jiro_id)
        assert saved is not None
        assert (saved.kana, saved.postcode, saved.prefecture) == (
            "サガ ジロウ",
            "840-0054",
            "佐賀県",
        )
        assert await s.scalar(
            select(CustomerEmail.address).where(CustomerEmail.customer_id == jiro_id)
        ) == ("jiro@example.jp")

    # A candidate the operator has not seen yet (a third 佐賀 on that phone) stops it again.
    with pytest.raises(DuplicatesFound) as caught:
        async with transaction(maker) as s:
            await register_customer(
                s,
                name="佐賀 三郎",
                kana="",
                phone="0952326611",
                staff_id=None,
                check_duplicates=True,
                known_duplicates={taro},
            )
    assert {c.id for c in caught.value.candidates} == {taro, jiro_id}

    with pytest.raises(CustomerInputError) as bad:
        async with transaction(maker) as s:
            await register_customer(
                s,
                name="",
                kana="佐賀",
                phone="12",
                staff_id=None,
                postcode="84000",
                prefecture="佐賀",
                email="no-at-sign",
            )
    assert set(bad.value.errors) == {"name", "kana", "phone", "postcode", "prefecture", "email"}


def test_new_customer_page_from_search_with_duplicate_step(
    client: Any, make_staff: Callable[..., int], database_url: str, maker: Any
) -> None:
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("op")
    login(client, "op")
    search = client.get("/customers", params={"q": "0952-32-6611"}).text
    assert 'href="/customers/new?q=0952-32-6611"' in search

    page = client.get("/customers/new", params={"q": "0952-32-6611"}).text
    assert re.search(r'id="new-phone" name="phone" value="0952-32-6611"', page)
    assert re.search(r'id="new-name" name="name" type="text" value=""[^>]*autofocus', page)
    assert '<button type="button" class="fkey" data-fkey="F1" data-target="#new-save">' in page
    kana_page = client.get("/customers/new", params={"q": "さが"}).text
    assert 'name="kana" type="text" value="サガ"' in kana_page
    assert 'name="name" type="text" value="佐賀"' in client.get("/customers/new?q=佐賀").text

    token = csrf_of(client)
    form = {
        "csrf_token": token,
        "name": "佐賀 次郎",
        "kana": "サガ ジロウ",
        "phone": "0952-32-6611",
        "phone_kind": "home",
        "postcode": "840-0054",
        "prefecture": "佐賀県",
        "city": "佐賀市",
        "street": "水ケ江1-1",
        "building": "",
        "email": "",
    }
    r = client.post("/customers/new", data=form, follow_redirects=False)
    assert r.status_code == 200
    assert "重複している可能性があります" in r.text and "佐賀 太郎" in r.text
    assert SAME_PHONE in r.text and f'href="/customers/{taro}"' in r.text
    assert f'name="seen" value="{taro}"' in r.text
    assert "別人として新規登録" in r.text
    assert run_count(maker, Customer) == 1

    bad = client.post("/customers/new", data={**form, "name": ""}, follow_redirects=False)
    assert bad.status_code == 400 and "顧客名を入力してください。" in bad.text
    assert run_count(maker, Customer) == 1

    r = client.post(
        "/customers/new",
        data={**form, "confirm": "1", "seen": str(taro)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    new_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert new_id != taro
    monitor = client.get(r.headers["location"]).text
    assert "佐賀 次郎" in monitor and "0952-32-6611" in monitor


def run_count(maker: Any, model: Any) -> int:
    from tests.conftest import run_async

    return int(run_async(count(maker, model)))


def _signed(secret: str, data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(data).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Yebisu-Signature": sig, "Content-Type": "application/json"}


def test_pop_new_customer_form_shows_candidates_before_saving(
    client: Any,
    settings: Settings,
    make_staff: Callable[..., int],
    database_url: str,
    maker: Any,
) -> None:
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("op", extension="201")
    login(client, "op")
    with client.websocket_connect("/ws") as ws:
        body, headers = _signed(
            settings.server.secret_key,
            {"action": "ring", "number": "0667778888", "extension": "201"},
        )
        ref = client.post("/cti/simulate", content=body, headers=headers).json()["call_id"]
        assert "登録のない番号です" in ws.receive_text()
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf_of(client)}
    form = {
        "source": "simulator",
        "call": ref,
        "name": "佐賀太郎",
        "kana": "",
        "phone": "06-6777-8888",
    }
    r = client.post("/calls/register", data={**form, "phone_kind": "home"}, headers=htmx)
    assert "HX-Redirect" not in r.headers
    assert "重複している可能性があります" in r.text and SAME_NAME in r.text
    vals = re.search(r"hx-post=\"/calls/choose\"\s+hx-vals='([^']+)'", r.text)
    assert vals is not None
    assert json.loads(vals.group(1)) == {
        "source": "simulator",
        "call": ref,
        "customer_id": str(taro),
    }
    assert run_count(maker, Customer) == 1

    # 別人として新規登録: saved, the call linked to the new customer, the monitor opens.
    r = client.post(
        "/calls/register",
        data={**form, "phone_kind": "home", "confirm": "1", "seen": str(taro)},
        headers=htmx,
    )
    location = r.headers["HX-Redirect"]
    new_id = int(location.split("/customers/")[1].split("?")[0])
    assert new_id != taro and run_count(maker, Customer) == 2


# --- the batch list -------------------------------------------------------------------------


async def test_batch_list_groups_by_name_and_phone_or_phone_only(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    a = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    b = add_customer(database_url, "佐賀太郎", "サガ タロウ", "090-1111-2222", "0952326611")
    c = add_customer(database_url, "佐賀 花子", "サガ ハナコ", "0952-32-6611")
    d = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    e = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678", merged_into_id=d)
    add_customer(database_url, "大阪 一郎", "オオサカ イチロウ", "06-6777-8888")
    async with transaction(maker) as s:
        s.add(Order(number="20260101-0000001", customer_id=e, received_on=dt.date(2026, 1, 5)))
        s.add(Order(number="20260101-0000002", customer_id=e, received_on=dt.date(2026, 2, 5)))

    async with maker() as s:
        page = await duplicate_groups(s, mode="name_phone")
    assert page.total == 2
    groups = {g.phone: [m.id for m in g.members] for g in page.groups}
    assert groups == {"0952-32-6611": [a, b], "03-1234-5678": [d, e]}
    kitada = next(g for g in page.groups if g.phone == "03-1234-5678")
    assert [(m.orders, m.last_order) for m in kitada.members] == [
        (0, None),
        (2, dt.date(2026, 2, 5)),
    ]
    assert kitada.suggested_survivor == e  # the one with the orders
    first = page.groups[0].members[1]
    assert (first.card.code, first.card.kana, first.card.address) == (
        f"{b:08d}",
        "サガ タロウ",
        "佐賀県佐賀市鍋島3-2",
    )
    assert [p for p, _k in first.card.phones] == ["090-1111-2222", "0952-32-6611"]

    async with maker() as s:
        phones = await duplicate_groups(s, mode="phone")
        one = await duplicate_groups(s, mode="phone", per_page=1, page=2)
    assert {g.phone: [m.id for m in g.members] for g in phones.groups} == {
        "0952-32-6611": [a, b, c],
        "03-1234-5678": [d, e],
    }
    assert (one.total, one.pages, [g.phone for g in one.groups]) == (2, 2, ["03-1234-5678"])


def test_duplicate_list_page_is_for_supervisors(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    a = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    b = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("op")
    make_staff("sv", role="supervisor")
    login(client, "op")
    assert client.get("/customers/duplicates").status_code == 403
    assert client.get(f"/customers/merge?survivor={a}&merged={b}").status_code == 403
    login(client, "sv")
    page = client.get("/customers/duplicates").text
    assert "0952-32-6611" in page and f"{a:08d}" in page and f"{b:08d}" in page
    assert 'class="dup-total">1<' in page
    past_the_end = client.get("/customers/duplicates?mode=phone&page=9").text
    assert f"{a:08d}" in past_the_end and "1 / 1" not in past_the_end  # back to page 1


# --- merging --------------------------------------------------------------------------------


async def _history_case(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> dict[str, int]:
    keep = add_customer(
        database_url,
        "佐賀 太郎",
        "サガ タロウ",
        "0952-32-6611",
        memo="電話は夕方に",
        alert="",
    )
    gone = add_customer(
        database_url,
        "佐賀 太郎",
        "さが たろう",
        "0952326611",  # the same number: not duplicated on the survivor
        "090-1111-2222",
        prefecture="福岡県",
        city="福岡市中央区",
        street="天神1-1",
        birth_date=dt.date(1950, 4, 1),
        company1="佐賀商店",
        memo="旧登録",
        alert="耳が遠い方",
        karte="そばアレルギー",
    )
    ids = {"keep": keep, "gone": gone}
    async with transaction(maker) as s:
        s.add_all(
            [
                CustomerEmail(customer_id=keep, address="taro@example.jp", position=0),
                CustomerEmail(customer_id=gone, address="taro@example.jp", position=0),
                CustomerEmail(customer_id=gone, address="taro2@example.jp", position=1),
            ]
        )
        gift = ShipTo(customer_id=gone, label="娘", name="佐賀 桃子")
        s.add(gift)
        call = Call(source="pbx", source_call_id="c-1", customer_id=gone)
        s.add(call)
        await s.flush()
        home_order = Order(
            number="20260101-0000001", customer_id=gone, received_on=dt.date(2026, 1, 5)
        )
        gift_order = Order(
            number="20260101-0000002",
            customer_id=gone,
            ship_to_id=gift.id,
            received_on=dt.date(2026, 1, 6),
        )
        s.add_all([home_order, gift_order])
        s.add(Resp(customer_id=gone, call_id=call.id, content="届かない"))
        s.add(Action(customer_id=gone, kind="dm"))
        s.add(Subscription(customer_id=gone, start_month=dt.date(2026, 1, 1)))
        await s.flush()
        ids.update(gift=gift.id, home_order=home_order.id, gift_order=gift_order.id)
    return ids


async def test_merge_moves_everything_and_records_history(
    database_url: str, maker: async_sessionmaker[AsyncSession], make_staff: Callable[..., int]
) -> None:
    ids = await _history_case(database_url, maker)
    keep, gone = ids["keep"], ids["gone"]
    sv = make_staff("sv", role="supervisor")

    async with maker() as s:
        plan = await plan_merge(s, survivor_id=keep, merged_id=gone)
    assert plan.counts == {
        "phones": 1,
        "emails": 1,
        "ship_tos": 1,
        "orders": 2,
        "responses": 1,
        "actions": 1,
        "subscriptions": 1,
        "calls": 1,
    }
    assert plan.duplicate_phones == ["0952326611"]
    assert plan.duplicate_emails == ["taro@example.jp"]
    assert plan.filled_labels == ["会社部署名1", "生年月日"]
    assert plan.appended_labels == ["アラート", "カルテ", "メモ"]
    assert plan.keeps_old_address  # the survivor lives in 佐賀, the merged one in 福岡

    async with transaction(maker) as s:
        done = await merge_customers(
            s, survivor_id=keep, merged_id=gone, staff_id=sv, purpose="同一人物の二重登録"
        )
    assert done.counts == plan.counts

    async with maker() as s:
        survivor = await s.get(Customer, keep)
        merged = await s.get(Customer, gone)
        assert survivor is not None and merged is not None
        assert merged.merged_into_id == keep and merged.name == "佐賀 太郎"  # kept as a row
        assert survivor.merged_into_id is None
        assert (survivor.birth_date, survivor.company1) == (dt.date(1950, 4, 1), "佐賀商店")
        assert survivor.prefecture == "佐賀県"  # its own address is not overwritten
        assert survivor.memo == f"電話は夕方に\n[統合元 {gone:08d}] 旧登録"
        assert (survivor.alert, survivor.karte) == ("耳が遠い方", "そばアレルギー")
        phones = (
            await s.scalars(
                select(CustomerPhone.raw)
                .where(CustomerPhone.customer_id == keep)
                .order_by(CustomerPhone.position)
            )
        ).all()
        assert phones == ["0952-32-6611", "090-1111-2222"]
        emails = (
            await s.scalars(
                select(CustomerEmail.address)
                .where(CustomerEmail.customer_id == keep)
                .order_by(CustomerEmail.position)
            )
        ).all()
        assert emails == ["taro@example.jp", "taro2@example.jp"]
        for model in (
            CustomerPhone,
            CustomerEmail,
            ShipTo,
            Order,
            Resp,
            Action,
            Subscription,
            Call,
        ):
            left = await s.scalar(
                select(func.count()).select_from(model).where(model.customer_id == gone)
            )
            assert left == 0, model
        # The order shipped to the merged customer's own address still shows that address.
        home_order = await s.get(Order, ids["home_order"])
        gift_order = await s.get(Order, ids["gift_order"])
        assert home_order is not None and gift_order is not None
        assert gift_order.ship_to_id == ids["gift"]
        old = await s.get(ShipTo, home_order.ship_to_id)
        assert old is not None
        # the old address stays usable: the merged customer's 定期 keeps going there
        assert (old.customer_id, old.prefecture, old.street, old.active) == (
            keep,
            "福岡県",
            "天神1-1",
            True,
        )
        [sub] = (
            await s.scalars(select(Subscription).where(Subscription.customer_id == keep))
        ).all()
        assert sub.ship_to_id == old.id

        entries = (
            await s.scalars(
                select(AuditLog).where(AuditLog.action == "merge").order_by(AuditLog.entity_id)
            )
        ).all()
        assert [(e.entity, e.entity_id, e.staff_id) for e in entries] == [
            ("customer", keep, sv),
            ("customer", gone, sv),
        ]
        changes = entries[0].changes
        assert changes is not None
        assert (changes["source_id"], changes["target_id"]) == (gone, keep)
        assert (changes["orders"], changes["calls"], changes["phones"]) == (2, 1, 1)
        assert entries[0].purpose == "同一人物の二重登録"
        # … which is what both customers' 変更履歴 (M7) shows.
        for cid in (keep, gone):
            history, _more = await customer_history(s, customer_id=cid, may_read_karte=True)
            assert (history[0].action_label, history[0].purpose) == ("統合", "同一人物の二重登録")

        # The merged customer is found nowhere any more; the survivor by every number.
        assert (await find_by_number(s, e164="+819011112222")).customer_ids == [keep]
        assert [c.id for c in (await search_customers(s, q="taro2@example.jp")).cards] == [keep]
        assert (await search_customers(s, q=f"{gone:08d}")).cards == []
        assert [c.id for c in (await search_customers(s, q="サガ タロウ")).cards] == [keep]


async def test_merge_refuses_the_same_customer_and_merged_ones_writing_nothing(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    a = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    b = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    c = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", merged_into_id=a)
    async with transaction(maker) as s:
        s.add(Order(number="20260101-0000001", customer_id=b, received_on=dt.date(2026, 1, 5)))
    before = await count(maker, AuditLog)
    for survivor, merged, field in ((a, a, "merged"), (a, c, "merged"), (c, b, "survivor")):
        with pytest.raises(CustomerInputError) as caught:
            async with transaction(maker) as s:
                await merge_customers(
                    s, survivor_id=survivor, merged_id=merged, staff_id=None, purpose="x"
                )
        assert field in caught.value.errors
    with pytest.raises(CustomerInputError) as stale:
        async with transaction(maker) as s:
            await merge_customers(
                s, survivor_id=a, merged_id=b, staff_id=None, purpose="x", versions=(1, 99)
            )
    assert "変更されました" in stale.value.errors["merged"]
    assert await count(maker, AuditLog) == before
    assert await count(maker, Order, Order.customer_id == b) == 1
    assert await count(maker, Customer, Customer.merged_into_id.is_not(None)) == 1


def test_merge_confirm_screen_then_merge_and_banner(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    a = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    b = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", "090-1111-2222")
    make_staff("bo", role="backoffice")
    login(client, "bo")
    blank = client.get("/customers/merge")
    assert blank.status_code == 200 and 'id="merge-survivor"' in blank.text
    token = csrf_of(client)
    back = "/customers/duplicates?mode=name_phone&page=1"
    form = {"csrf_token": token, "survivor": f"{a:08d}", "merged": f"{b:08d}", "back": back}
    r = client.post("/customers/merge", data=form)
    assert r.status_code == 200
    assert "残す顧客" in r.text and "統合される顧客" in r.text
    assert 'data-count="phones">1<' in r.text and "0952326611" not in r.text
    assert 'data-target="#merge-submit"' in r.text
    versions = re.search(r'name="versions" value="([^"]+)"', r.text)
    assert versions is not None

    same = client.post("/customers/merge", data={**form, "merged": f"{a:08d}", "confirm": "1"})
    assert same.status_code == 400 and "同じ顧客どうしは統合できません。" in same.text

    r = client.post(
        "/customers/merge",
        data={**form, "confirm": "1", "purpose": "二重登録", "versions": versions.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"{back}&done={a}"
    listing = client.get(r.headers["location"]).text
    assert "統合しました" in listing
    banner = client.get(f"/customers/{b}").text
    assert "統合されました" in banner and f'href="/customers/{a}"' in banner
    again = client.post("/customers/merge", data={**form, "confirm": "1", "purpose": "x"})
    assert again.status_code == 400 and "既に" in again.text
