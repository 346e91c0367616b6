"""定期情報 changes (S1, S4) and 定期発送一覧 (S3) as users see them."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditLog
from app.config import Settings
from app.masters.models import CancelReason
from app.orders.models import Order
from app.responses.models import Response
from app.web import JST
from tests.conftest import csrf_of, login
from tests.factories import add_customer, add_masters
from tests.orders.test_history import in_db, tables
from tests.subscriptions.helpers import add_subscription, orders_of, run, subscription

D = dt.date


@pytest.fixture(autouse=True)
def _local_jobs(settings: Settings) -> None:
    """Runs started from the screens execute in the app (the arq path has its own test)."""
    settings.redis.url = ""


def cells(html: str, table_id: str) -> list[list[str]]:
    return [r.cells for r in tables(html)[table_id].rows]


def today() -> dt.date:
    return dt.datetime.now(JST).date()


def _setup(client: Any, database_url: str, make_staff: Any, role: str = "operator") -> int:
    add_masters(database_url)
    make_staff("op1", role=role)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    login(client, "op1")
    return cid


def _reason(database_url: str, name: str = "効果を感じない") -> int:
    async def go(s: AsyncSession) -> int:
        r = CancelReason(code="C01", name=name, kind="cancel", sort_order=1, active=True)
        s.add(r)
        await s.flush()
        return r.id

    return int(in_db(database_url, go))


def _responses(database_url: str) -> list[tuple[str, str, str]]:
    async def go(s: AsyncSession) -> list[tuple[str, str, str]]:
        rows = await s.execute(
            select(Response.category, Response.content, Response.answer).order_by(Response.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    found: list[tuple[str, str, str]] = in_db(database_url, go)
    return found


def _audit(database_url: str, cid: int) -> list[tuple[str, dict[str, Any]]]:
    async def go(s: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
        rows = await s.execute(
            select(AuditLog.action, AuditLog.changes)
            .where(AuditLog.entity == "customer", AuditLog.entity_id == cid)
            .order_by(AuditLog.id)
        )
        return [(a, c or {}) for a, c in rows]

    found: list[tuple[str, dict[str, Any]]] = in_db(database_url, go)
    return found


def test_new_subscription_shows_terms_then_registers_with_a_response(
    client: Any, database_url: str, make_staff: Any
) -> None:
    cid = _setup(client, database_url, make_staff)
    token = csrf_of(client)
    month = today().replace(day=1) + dt.timedelta(days=40)
    form = {
        "csrf_token": token,
        "step": "confirm",
        "start_month": f"{month:%Y/%m}",
        "interval": "m2",
        "interval_n": "",
        "day": "31",
        "code": ["10001", "", ""],
        "quantity": ["2", "1", "1"],
        "ship_to": "",
        "payment": "cod",
        "carrier": "yamato",
    }
    page = client.post(f"/customers/{cid}/subscriptions/new", data=form)
    assert page.status_code == 200, page.text
    first = month.replace(day=28) if month.month == 2 else None
    assert "お客様へのご説明" in page.text
    assert "2ヶ月ごと（末日）" in page.text
    assert "次回以降のお届け予定日" in page.text and "円（税込・送料込）" in page.text
    m = re.search(r'id="subscription-next">([0-9/]+)<', page.text)
    assert m is not None
    nxt = dt.datetime.strptime(m.group(1), "%Y/%m/%d").date()
    assert nxt.month == month.month and (nxt + dt.timedelta(days=1)).day == 1  # the last day
    assert first is None or nxt == first
    assert _responses(database_url) == []  # nothing written before 確定

    saved = client.post(f"/customers/{cid}/subscriptions/new", data={**form, "step": "save"})
    assert saved.status_code == 200
    assert "を登録しました" in saved.text
    subs = cells(saved.text, "subscriptions")
    assert subs[0][:5] == [
        f"{month:%Y/%m}",
        "2ヶ月ごと",
        "末日",
        "10001 健康トニック 2個",
        f"{nxt:%Y/%m/%d}",
    ]
    ((category, content, answer),) = _responses(database_url)
    assert category == "定期変更" and "新規申し込み" in content and "健康トニック 2個" in content
    assert f"次回配送日 {nxt:%Y/%m/%d}" in answer
    assert _audit(database_url, cid)[-1][0] == "subscription_create"


def test_new_subscription_errors_are_shown_beside_the_fields(
    client: Any, database_url: str, make_staff: Any
) -> None:
    cid = _setup(client, database_url, make_staff)
    page = client.post(
        f"/customers/{cid}/subscriptions/new",
        data={
            "csrf_token": csrf_of(client),
            "step": "confirm",
            "start_month": "2020/01",
            "interval": "w",
            "interval_n": "99",
            "code": ["20001", "nope"],
            "quantity": ["0", "1"],
            "carrier": "yamato",
            "payment": "cod",
        },
    )
    assert page.status_code == 422
    assert "開始月に過ぎた月は指定できません。" in page.text
    assert "間隔は1〜26で入力してください。" in page.text
    assert "未登録の商品コードです。" in page.text
    assert _responses(database_url) == []


def _change(client: Any, cid: int, sid: int, **data: str) -> Any:
    version = str(subscription_version(client, cid, sid))
    form = {"csrf_token": csrf_of(client), "version": version, "step": "confirm", **data}
    confirm = client.post(f"/customers/{cid}/subscriptions/{sid}", data=form)
    assert confirm.status_code == 200, confirm.text
    assert "この内容で変更しますか" in confirm.text
    return client.post(f"/customers/{cid}/subscriptions/{sid}", data={**form, "step": "save"})


def subscription_version(client: Any, cid: int, sid: int) -> int:
    page = client.get(f"/customers/{cid}/subscriptions/{sid}")
    m = re.search(r'name="version" value="(\d+)"', page.text)
    assert m is not None
    return int(m.group(1))


def _cancel_confirm(client: Any, cid: int, sid: int, reason: int) -> Any:
    """解約の確認 for ``sid`` with ``reason`` (nothing saved)."""
    form = {
        "csrf_token": csrf_of(client),
        "version": str(subscription_version(client, cid, sid)),
        "op": "cancel",
        "reason": str(reason),
        "step": "confirm",
    }
    return client.post(f"/customers/{cid}/subscriptions/{sid}", data=form)


def _cancel_terms(html: str) -> str:
    """The 解約 confirmation's section of what to read to the customer."""
    return html.split('id="subscription-cancel-terms"', 1)[1].split("</section>", 1)[0]


def test_interval_skip_pause_resume_and_cancel(
    client: Any, database_url: str, make_staff: Any
) -> None:
    cid = _setup(client, database_url, make_staff)
    reason = _reason(database_url)
    start = today() + dt.timedelta(days=20)
    sid = add_subscription(database_url, customer_id=cid, next_date=start, day=min(start.day, 28))

    page = _change(client, cid, sid, op="interval", interval="m2", day="31")
    assert page.status_code == 200
    sub = subscription(database_url, sid)
    assert (sub.interval_n, sub.day_of_month) == (2, 31)
    assert sub.next_date is not None and sub.next_date.month == start.month
    after_interval = sub.next_date

    page = _change(client, cid, sid, op="skip")
    sub = subscription(database_url, sid)
    assert sub.next_date is not None and sub.next_date > after_interval
    assert f"次回（{after_interval:%Y/%m/%d}）のお届けをスキップ" in page.text

    until = today().replace(day=1) + dt.timedelta(days=200)
    _change(client, cid, sid, op="pause", until=f"{until:%Y/%m}")
    sub = subscription(database_url, sid)
    assert sub.status == "paused" and sub.paused_until is not None
    assert sub.paused_until.month == until.month and sub.next_date is not None
    assert sub.next_date > sub.paused_until
    assert "休止中（〜" in client.get(f"/customers/{cid}/subscriptions").text

    _change(client, cid, sid, op="resume")
    sub = subscription(database_url, sid)
    assert sub.status == "active" and sub.paused_until is None
    assert sub.next_date is not None and sub.next_date > today()

    page = _change(client, cid, sid, op="cancel", reason=str(reason), note="飲みきれない")
    sub = subscription(database_url, sid)
    assert (sub.status, sub.next_date, sub.cancel_reason_id) == ("cancelled", None, reason)
    row = cells(page.text, "subscriptions")[0]
    assert row[4] == "—" and "解約" in row[5] and "効果を感じない（飲みきれない）" in row[5]

    categories = [c for c, _, _ in _responses(database_url)]
    assert categories == ["定期変更"] * 5
    contents = [c for _, c, _ in _responses(database_url)]
    assert [x.split(" ", 1)[1] for x in contents] == [
        "配送間隔・配送日の変更",
        "次回のスキップ",
        "休止",
        "再開",
        "解約",
    ]
    actions = [a for a, _ in _audit(database_url, cid)]
    assert actions == ["subscription_update"] * 5
    assert _audit(database_url, cid)[0][1]["配送月・配送日"][1].startswith("2ヶ月ごと 末日")
    history = client.get(f"/customers/{cid}/history")
    assert history.status_code == 200
    assert "効果を感じない（飲みきれない）" in history.text


def test_a_change_on_a_stale_screen_is_refused(
    client: Any, database_url: str, make_staff: Any
) -> None:
    cid = _setup(client, database_url, make_staff)
    sid = add_subscription(database_url, customer_id=cid, next_date=today() + dt.timedelta(days=10))
    stale = str(subscription_version(client, cid, sid))
    _change(client, cid, sid, op="skip")  # someone else, meanwhile
    page = client.post(
        f"/customers/{cid}/subscriptions/{sid}",
        data={"csrf_token": csrf_of(client), "version": stale, "op": "skip", "step": "save"},
    )
    assert page.status_code == 409
    assert "他の担当者がこの定期を変更しました" in page.text
    assert len(_responses(database_url)) == 1


def test_cancel_confirmation_names_the_delivery_already_arranged(
    client: Any, database_url: str, make_staff: Any
) -> None:
    cid = _setup(client, database_url, make_staff)
    reason = _reason(database_url)
    day = today()
    sid = add_subscription(database_url, customer_id=cid, next_date=day, day=min(day.day, 28))
    run(database_url, day)  # today's delivery is ordered, not shipped yet
    [arranged] = orders_of(database_url, sid)
    after = subscription(database_url, sid).next_date
    assert arranged.status == "confirmed" and after is not None and after > day

    confirm = _cancel_confirm(client, cid, sid, reason)
    assert confirm.status_code == 200
    terms = _cancel_terms(confirm.text)
    assert f"次回配送日（{after:%Y/%m/%d}）以降のお届けはございません" in terms
    assert f"受注番号 {arranged.number}" in terms and "この解約では止まりません" in terms
    assert arranged.deliver_on is not None
    assert f"お届け予定日 {arranged.deliver_on:%Y/%m/%d}" in terms
    assert "スキップ" in terms and "休止" in terms
    assert subscription(database_url, sid).status == "active"  # nothing written yet

    # Shipped but still on its way: still read out. Delivered (yesterday): not any more.
    async def set_order(s: AsyncSession, **values: Any) -> None:
        order = await s.get(Order, arranged.id)
        assert order is not None
        for k, v in values.items():
            setattr(order, k, v)

    in_db(database_url, lambda s: set_order(s, status="shipped"))
    confirm = _cancel_confirm(client, cid, sid, reason)
    assert f"受注番号 {arranged.number}" in confirm.text
    yesterday = day - dt.timedelta(days=1)
    in_db(database_url, lambda s: set_order(s, ship_on=yesterday, deliver_on=yesterday))
    confirm = _cancel_confirm(client, cid, sid, reason)
    assert confirm.status_code == 200
    assert "この解約では止まりません" not in confirm.text
    assert "以降のお届けはございません" in confirm.text


def test_cancelling_a_paused_subscription_offers_to_stay_paused(
    client: Any, database_url: str, make_staff: Any
) -> None:
    cid = _setup(client, database_url, make_staff)
    reason = _reason(database_url)
    until = today().replace(day=28) + dt.timedelta(days=40)
    sid = add_subscription(
        database_url,
        customer_id=cid,
        next_date=until + dt.timedelta(days=10),
        status="paused",
        paused_until=until,
    )
    confirm = _cancel_confirm(client, cid, sid, reason)
    assert confirm.status_code == 200
    assert "休止のままお待ちいただくこともできます" in confirm.text
    assert "スキップ" not in _cancel_terms(confirm.text)


def test_cancel_needs_a_reason(client: Any, database_url: str, make_staff: Any) -> None:
    cid = _setup(client, database_url, make_staff)
    sid = add_subscription(database_url, customer_id=cid, next_date=today() + dt.timedelta(days=10))
    page = client.post(
        f"/customers/{cid}/subscriptions/{sid}",
        data={
            "csrf_token": csrf_of(client),
            "version": str(subscription_version(client, cid, sid)),
            "op": "cancel",
            "step": "save",
        },
    )
    assert page.status_code == 422
    assert "解約理由を選んでください。" in page.text
    assert subscription(database_url, sid).status == "active"


def _wait_done(client: Any, run_id: int) -> str:
    for _ in range(100):
        frag = client.get(f"/jobs/{run_id}/progress")
        if "job-done" in frag.text or "job-failed" in frag.text:
            return str(frag.text)
        time.sleep(0.1)
    raise AssertionError("the run did not finish")


def test_shipments_list_run_csv_and_pdf(client: Any, database_url: str, make_staff: Any) -> None:
    from pypdf import PdfReader

    add_masters(database_url)
    make_staff("back", role="backoffice")
    day = today()
    names = ["北田 君子", "佐田 浩二"]
    for i, name in enumerate(names):
        cid = add_customer(database_url, name, "カナ", f"0952-26-{8000 + i}")
        add_subscription(database_url, customer_id=cid, next_date=day)
    login(client, "back")

    before = client.get(f"/subscriptions?date={day:%Y/%m/%d}")
    assert before.status_code == 200
    rows = cells(before.text, "shipments-table")
    assert [r[0] for r in rows] == ["未作成", "未作成"]
    assert {r[3] for r in rows} == set(names)

    page = client.post(
        "/subscriptions/run", data={"csrf_token": csrf_of(client), "date": f"{day:%Y/%m/%d}"}
    )
    assert page.status_code == 200
    m = re.search(r"/jobs/(\d+)/progress", page.text)
    assert m is not None
    frag = _wait_done(client, int(m.group(1)))
    assert "作成 2件" in frag

    after = client.get(f"/subscriptions?date={day.isoformat()}")
    rows = cells(after.text, "shipments-table")
    assert [r[0] for r in rows] == ["作成済", "作成済"]
    assert all(re.fullmatch(r"\d{8}-\d{7}", r[1]) for r in rows)
    assert all(r[4] == "10001 健康トニック" and r[5] == "1" for r in rows)

    csv = client.get(f"/subscriptions.csv?date={day.isoformat()}")
    assert csv.headers["content-type"].startswith("text/csv")
    text = csv.content.decode("utf-8")
    assert text.startswith("\ufeff状態,受注番号")
    assert all(name in text for name in names)

    pdf = client.get(f"/subscriptions.pdf?date={day.isoformat()}")
    assert pdf.headers["content-type"] == "application/pdf"
    extracted = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "定期発送一覧表" in extracted
    assert all(name in extracted for name in names)

    jobs = client.get("/jobs")
    assert jobs.status_code == 200
    row = cells(jobs.text, "jobs-table")[0]
    assert row[1] == "定期受注の作成（日次）" and "完了" in row[6]


def test_shipments_is_for_supervisors_and_back_office(
    client: Any, database_url: str, make_staff: Any
) -> None:
    _setup(client, database_url, make_staff)
    assert client.get("/subscriptions").status_code == 403
    assert client.get("/jobs").status_code == 403


def test_bad_date_is_refused(client: Any, database_url: str, make_staff: Any) -> None:
    _setup(client, database_url, make_staff, role="supervisor")
    page = client.get("/subscriptions?date=2026/13/45")
    assert page.status_code == 400
    assert "日付を 2026/12/10 の形式で入力してください。" in page.text


def test_orders_made_by_the_run_show_in_the_tabs_delivery_history(
    client: Any, database_url: str, make_staff: Any
) -> None:
    cid = _setup(client, database_url, make_staff)
    sid = add_subscription(database_url, customer_id=cid, next_date=D(2026, 1, 10))
    run(database_url, D(2026, 1, 10))
    run(database_url, D(2026, 2, 10))
    assert len(orders_of(database_url, sid)) == 2
    page = client.get(f"/customers/{cid}/subscriptions/{sid}")
    rows = cells(page.text, "subscription-deliveries")
    assert len(rows) == 2
    assert rows[0][0] == "定期"
