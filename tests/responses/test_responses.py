"""対応履歴 and AC履歴 tabs: lists with filters and paging, entry with validation, completing
a call's open response, FAQ search, actions in time order and the sales they led to."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from app import dates
from app.calls.models import Call
from app.db import make_engine, make_sessionmaker, transaction
from app.orders.models import Order
from app.responses import service
from app.responses.models import Action, Faq, Response
from tests.conftest import csrf_of, login, run_async
from tests.factories import add_customer, add_masters

JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


async def _insert(url: str, objs: list[Any]) -> list[int]:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            s.add_all(objs)
            await s.flush()
            return [o.id for o in objs]
    finally:
        await engine.dispose()


def insert(url: str, *objs: Any) -> list[int]:
    return list(run_async(_insert(url, list(objs))))


async def _fetch(url: str, stmt: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            return list((await s.execute(stmt)).all())
    finally:
        await engine.dispose()


def fetch(url: str, stmt: Any) -> list[Any]:
    return list(run_async(_fetch(url, stmt)))


def count(url: str, model: Any) -> int:
    return int(fetch(url, select(func.count()).select_from(model))[0][0])


def htmx(client: Any, target: str = "") -> dict[str, str]:
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf_of(client)}
    if target:
        headers["HX-Target"] = target
    return headers


def section(html: str, element_id: str) -> str:
    """The HTML from the element with this id to the end of its table."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</table>", start)]


def form_data(**kw: str) -> dict[str, str]:
    return {
        "responded_at": NOW.astimezone(JST).strftime("%Y/%m/%d %H:%M"),
        "category": "問合せ",
        "channel": "電話",
        "content": "",
        "answer": "",
        "status": "done",
        **kw,
    }


# --- 対応履歴: list ----------------------------------------------------------------------------


def test_list_is_newest_first_filtered_and_paged(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    other = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    koga = make_staff("koga", name="古賀 雅美")
    login(client, "koga")
    rows = [
        Response(
            customer_id=cid,
            staff_id=koga,
            responded_at=ago(i + 0.1),
            category="クレーム" if i % 10 == 3 else "問合せ",
            channel="メール" if i == 7 else "電話",
            content=f"内容{i:03d}",
            answer=f"回答{i:03d}",
            status="open" if i == 1 else "done",
        )
        for i in range(55)
    ]
    old = Response(
        customer_id=cid,
        staff_id=koga,
        responded_at=dt.datetime(2015, 4, 25, 3, tzinfo=dt.UTC),
        category="クレーム",
        content="送付されてきた商品に説明書が入っていなかった",
        answer="商品の説明書を郵送することを伝え、配送の手配を行った",
    )
    elsewhere = Response(customer_id=other, content="別の顧客の内容")
    insert(database_url, *rows, old, elsewhere)

    page = client.get(f"/customers/{cid}/responses")
    assert page.status_code == 200
    listed = section(page.text, "response-list")
    # The last 12 months, newest first, 50 a page; nothing of another customer.
    assert "55件中 1–50件" in page.text and "1 / 2 ページ" in page.text
    assert listed.index("内容000") < listed.index("内容001") < listed.index("内容049")
    assert "内容050" not in listed and "説明書" not in listed and "別の顧客" not in listed
    assert "古賀 雅美" in listed and "回答000" in listed
    assert re.search(r'class="is-open".*?内容001.*?未完了', listed, re.S)
    today = NOW.astimezone(JST).date()
    assert f'value="{today:%Y/%m/%d}"' in page.text  # 対応日 to: today

    second = client.get(f"/customers/{cid}/responses?page=2")
    listed = section(second.text, "response-list")
    assert "内容050" in listed and "内容054" in listed and "内容049" not in listed

    # 検索 re-renders only the list; the URL carries the filter (hx-push-url).
    r = client.get(
        f"/customers/{cid}/responses",
        params={"from": "2015-01-01", "to": "2015/05/31", "cat": "", "ch": ""},
        headers=htmx(client, "response-history"),
    )
    assert r.status_code == 200 and 'class="monitor-head"' not in r.text
    assert 'hx-push-url="true"' in r.text
    listed = section(r.text, "response-list")
    assert "説明書が入っていなかった" in listed and "内容000" not in listed
    assert "2015/04/25" in listed and "1件" in r.text

    r = client.get(f"/customers/{cid}/responses", params={"from": "", "to": "", "cat": "クレーム"})
    listed = section(r.text, "response-list")
    assert "内容003" in listed and "内容013" in listed and "説明書" in listed
    assert "内容000" not in listed and "7件" in r.text

    r = client.get(f"/customers/{cid}/responses", params={"ch": "メール"})
    assert "内容007" in section(r.text, "response-list") and "1件" in r.text

    r = client.get(
        f"/customers/{cid}/responses",
        params={"from": "2015/13/40", "to": ""},
        headers=htmx(client, "response-history"),
    )
    assert r.status_code == 400
    assert "日付は 2015/01/01 の形式で入力してください。" in r.text
    r = client.get(f"/customers/{cid}/responses", params={"from": "2015/05/01", "to": "2015/01/01"})
    assert r.status_code == 400 and "終了日は開始日以降の日付を入力してください。" in r.text


def test_dates_typed_by_operators() -> None:
    assert dates.parse_date("2015/01/01") == dt.date(2015, 1, 1)
    assert dates.parse_date("2015-1-2") == dt.date(2015, 1, 2)
    assert dates.parse_date("２０１５／０１／０３") == dt.date(2015, 1, 3)
    assert dates.parse_date("2015年1月4日") == dt.date(2015, 1, 4)
    assert dates.parse_date("20150105") == dt.date(2015, 1, 5)
    assert dates.parse_date(" ") is None
    at = service.parse_datetime("2015/01/01 09:30")
    assert at == dt.datetime(2015, 1, 1, 0, 30, tzinfo=dt.UTC)
    for bad in ("2015/02/30", "1/1", "2015/01/01 25:00", "昨日"):
        try:
            service.parse_datetime(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    r = service.default_range(dt.date(2024, 2, 29))
    assert (r.start, r.end) == (dt.date(2023, 3, 1), dt.date(2024, 2, 29))


# --- 対応履歴: entry ---------------------------------------------------------------------------


def test_save_validates_writes_nothing_on_error_and_records_an_action(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美")
    login(client, "koga")
    page = client.get(f"/customers/{cid}/responses").text
    # F1 登録 presses the form's button; 内容 has the focus; 種別 defaults to 電話.
    assert 'data-fkey="F1" data-target="#response-save"' in page
    assert re.search(r'<textarea id="response-content"[^>]*autofocus', page)
    channel = page[page.index('id="response-channel"') :]
    assert channel[: channel.index("</select>")].count("<option selected>電話</option>") == 1

    r = client.post(
        f"/customers/{cid}/responses",
        data=form_data(content="  ", responded_at="2015/13/01", category="なし"),
        headers=htmx(client),
    )
    assert r.status_code == 400
    assert "内容を入力してください。" in r.text
    assert "対応日時は 2015/01/01 10:30 の形式で入力してください。" in r.text
    assert "区分を選んでください。" in r.text
    assert 'aria-invalid="true"' in r.text
    future = (NOW + dt.timedelta(days=2)).astimezone(JST).strftime("%Y/%m/%d %H:%M")
    r = client.post(
        f"/customers/{cid}/responses",
        data=form_data(content="使用方法の問合せ", answer="使用方法を回答", responded_at=future),
        headers=htmx(client),
    )
    assert r.status_code == 400 and "未来の日時は入力できません。" in r.text
    assert "使用方法の問合せ" in r.text  # what was typed stays
    assert count(database_url, Response) == 0 and count(database_url, Action) == 0

    data = form_data(
        content="商品についての使用方法の問合せ",
        answer="使用方法を回答",
        cat="",
        ch="",
        **{"from": "", "to": ""},
    )
    r = client.post(f"/customers/{cid}/responses", data=data, headers=htmx(client))
    assert r.status_code == 200
    assert "対応履歴を登録しました。" in r.text
    form_part = r.text[: r.text.index('id="response-history"')]
    assert "商品についての使用方法の問合せ" not in form_part.split("faq-results")[0]  # cleared
    assert 'id="response-history" class="response-history" aria-labelledby' in r.text
    assert 'hx-swap-oob="true"' in r.text
    assert "商品についての使用方法の問合せ" in section(r.text, "response-list")

    # A double submit of the same form writes nothing more.
    client.post(f"/customers/{cid}/responses", data=data, headers=htmx(client))
    saved = fetch(database_url, select(Response.content, Response.status, Response.call_id))
    assert saved == [("商品についての使用方法の問合せ", "done", None)]
    actions = fetch(database_url, select(Action.kind, Action.content, Action.result))
    assert actions == [("response", "問合せ: 商品についての使用方法の問合せ", "対応済")]

    # 未完了 is kept open and shown at the top to complete.
    client.post(
        f"/customers/{cid}/responses",
        data=form_data(content="折り返し希望", status="open"),
        headers=htmx(client),
    )
    page = client.get(f"/customers/{cid}/responses").text
    opened = section(page, "open-responses")
    assert "折り返し希望" in opened and "完了にする" in opened


async def _call_with_open_response(url: str, cid: int, staff: int, other: int) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            call = Call(
                source="test",
                source_call_id="c-1",
                state="ended",
                staff_id=staff,
                customer_id=cid,
                caller_raw="0952326611",
                started_at=ago(0.01),
                answered_at=ago(0.01),
            )
            s.add(call)
            await s.flush()
            left = Response(
                customer_id=cid,
                call_id=call.id,
                staff_id=staff,
                responded_at=call.answered_at,
                status="open",
            )
            theirs = Response(
                customer_id=cid,
                staff_id=other,
                responded_at=ago(0.001),
                content="他の人の未完了",
                status="open",
            )
            mine = Response(
                customer_id=cid,
                staff_id=staff,
                responded_at=ago(3),
                content="自分の未完了",
                status="open",
            )
            s.add_all([left, theirs, mine])
            await s.flush()
            return {"call": call.id, "left": left.id, "theirs": theirs.id, "mine": mine.id}
    finally:
        await engine.dispose()


def test_completing_the_open_response_a_call_left(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    op = make_staff("op", name="古賀 雅美", extension="201")
    other = make_staff("other", name="山田 花子")
    ids = run_async(_call_with_open_response(database_url, cid, op, other))
    login(client, "op")

    page = client.get(f"/customers/{cid}/responses?call={ids['call']}").text
    opened = section(page, "open-responses")
    # The monitor's call first, then this operator's own, then the others'.
    assert opened.index("この通話") < opened.index("自分の未完了") < opened.index("他の人の未完了")
    # The call's response is loaded into the form, to be completed.
    assert f'name="response_id" value="{ids["left"]}"' in page
    assert "未完了の対応を完了" in page

    # 入力 of another open response loads it.
    r = client.get(
        f"/customers/{cid}/responses/form?response={ids['mine']}&call={ids['call']}",
        headers=htmx(client, "response-entry"),
    )
    assert f'name="response_id" value="{ids["mine"]}"' in r.text and "自分の未完了" in r.text

    post_url = f"/customers/{cid}/responses?call={ids['call']}"
    r = client.post(
        post_url,
        data=form_data(response_id=str(ids["left"]), content=""),
        headers=htmx(client),
    )
    assert r.status_code == 400 and "内容を入力してください。" in r.text
    assert f'name="response_id" value="{ids["left"]}"' in r.text
    r = client.post(
        post_url,
        data=form_data(
            response_id=str(ids["left"]),
            category="クレーム",
            content="説明書が入っていなかった",
            answer="郵送を手配",
        ),
        headers=htmx(client),
    )
    assert r.status_code == 200 and "対応履歴を登録しました。" in r.text
    row = fetch(
        database_url,
        select(Response.status, Response.category, Response.content, Response.call_id).where(
            Response.id == ids["left"]
        ),
    )
    assert row == [("done", "クレーム", "説明書が入っていなかった", ids["call"])]
    assert fetch(database_url, select(Action.kind, Action.call_id, Action.result)) == [
        ("response", ids["call"], "対応済")
    ]
    assert "この通話" not in section(r.text, "open-responses")
    assert count(database_url, Response) == 3
    # The same form submitted twice is no error and writes nothing more.
    again = client.post(
        post_url,
        data=form_data(
            response_id=str(ids["left"]),
            category="クレーム",
            content="説明書が入っていなかった",
            answer="郵送を手配",
        ),
        headers=htmx(client),
    )
    assert again.status_code == 200 and count(database_url, Action) == 1

    # Completing it again is refused; the call page shows it done.
    r = client.post(
        post_url,
        data=form_data(response_id=str(ids["left"]), content="二重"),
        headers=htmx(client),
    )
    assert r.status_code == 400 and "既に完了" in r.text
    call_page = client.get(f"/calls/{ids['call']}").text
    assert "説明書が入っていなかった" in call_page and "未入力" not in call_page


def test_new_response_on_a_call_fills_the_blank_one_it_left(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    op = make_staff("op", extension="201")
    other = make_staff("other")
    ids = run_async(_call_with_open_response(database_url, cid, op, other))
    login(client, "op")
    r = client.post(
        f"/customers/{cid}/responses?call={ids['call']}",
        data=form_data(content="定期の間隔を変更", category="定期変更"),
        headers=htmx(client),
    )
    assert r.status_code == 200
    rows = fetch(
        database_url,
        select(Response.id, Response.status).where(Response.call_id == ids["call"]),
    )
    assert rows == [(ids["left"], "done")]
    # Without the call, a new response is written (not linked to a call).
    client.post(
        f"/customers/{cid}/responses",
        data=form_data(content="別件の問合せ"),
        headers=htmx(client),
    )
    assert fetch(
        database_url, select(Response.call_id).where(Response.content == "別件の問合せ")
    ) == [(None,)]


def test_blank_response_of_a_call_already_answered_is_not_offered(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    op = make_staff("op", extension="201")
    (call_id,) = insert(
        database_url,
        Call(source="test", source_call_id="c-2", state="answered", staff_id=op, customer_id=cid),
    )
    login(client, "op")
    # Entered while still talking; the call ends afterwards and leaves its blank response.
    r = client.post(
        f"/customers/{cid}/responses?call={call_id}",
        data=form_data(content="通話中に入力"),
        headers=htmx(client),
    )
    assert r.status_code == 200
    insert(database_url, Response(customer_id=cid, call_id=call_id, staff_id=op, status="open"))
    page = client.get(f"/customers/{cid}/responses?call={call_id}").text
    assert "未完了の対応" not in page and 'name="response_id" value=""' in page


def test_plain_form_post_without_script(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("op")
    login(client, "op")
    token = csrf_of(client)
    url = f"/customers/{cid}/responses"
    r = client.post(url, data=form_data(csrf_token=token, content=""))
    assert r.status_code == 400 and 'class="monitor-head"' in r.text
    assert "内容を入力してください。" in r.text
    r = client.post(
        url, data=form_data(csrf_token=token, content="ハガキで問合せ"), follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"{url}?saved=1"
    page = client.get(r.headers["location"]).text
    assert "対応履歴を登録しました。" in page and "ハガキで問合せ" in section(page, "response-list")


def test_ended_call_response_shows_in_the_tab_through_the_call_page(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    op = make_staff("op", extension="201")
    ids = run_async(_call_with_open_response(database_url, cid, op, op))
    login(client, "op")
    client.post(
        f"/calls/{ids['call']}/response",
        data={
            "csrf_token": csrf_of(client),
            "category": "問合せ",
            "channel": "電話",
            "content": "届く日の問合せ",
            "answer": "3日後と回答",
        },
    )
    listed = section(client.get(f"/customers/{cid}/responses").text, "response-list")
    assert "届く日の問合せ" in listed and "3日後と回答" in listed


# --- FAQ ---------------------------------------------------------------------------------------


def test_faq_search_while_typing_and_free_search(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    add_masters(database_url)
    insert(
        database_url,
        Faq(
            category="商品",
            question="古い説明書の案内",
            answer="廃止",
            keywords="説明書",
            active=False,
        ),
    )
    make_staff("op")
    login(client, "op")
    url = f"/customers/{cid}/responses/faqs"

    r = client.get(url, params={"content": "説明書", "faq_q": ""}, headers=htmx(client))
    assert "健康サポートテープの貼り方を知りたい" in r.text
    assert "古い説明書の案内" not in r.text  # inactive
    m = re.search(r'class="faq-insert" data-answer="([^"]+)"', r.text)
    assert m and m.group(1).startswith("肌を清潔にして水気をふき取り")
    # A sentence typed without spaces finds the FAQ by its keywords.
    r = client.get(url, params={"content": "送付されてきた商品に説明書が入っていなかった"})
    assert "健康サポートテープの貼り方を知りたい" in r.text
    # The free search: every word must match.
    r = client.get(url, params={"content": "説明書", "faq_q": "定期　変更"})
    assert "定期購入の間隔を変更したい" in r.text and "貼り方" not in r.text
    r = client.get(url, params={"faq_q": "返品 不良"})
    assert "商品を返品したい" in r.text and "定期" not in r.text
    r = client.get(url, params={"faq_q": "ありえない言葉"})
    assert "該当するFAQはありません。" in r.text
    r = client.get(url, params={"faq_q": "100%"})
    assert "該当するFAQはありません。" in r.text  # % is no wildcard


async def test_search_faqs_service(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            s.add_all(
                [
                    Faq(
                        category="配送",
                        question="届く日を指定したい",
                        answer="3日後以降",
                        keywords="お届け日 指定",
                    ),
                    Faq(
                        category="支払",
                        question="支払方法",
                        answer="代引・カード",
                        keywords="代引 カード",
                    ),
                ]
            )
            await s.flush()
            hits = await service.search_faqs(s, q="お届け日")
            assert [f.question for f in hits] == ["届く日を指定したい"]
            hits = await service.search_faqs(s, text="代引の手数料はいくらですか")
            assert [f.question for f in hits] == ["支払方法"]
            assert await service.search_faqs(s, q="  ") == []
    finally:
        await engine.dispose()


# --- AC履歴 ------------------------------------------------------------------------------------


def test_attribute_sales_windows() -> None:
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    day = dt.timedelta(days=1)
    got = service.attribute_sales(
        [(1, t0), (2, t0 + 10 * day), (3, t0 + 50 * day)],
        [
            (t0 + 2 * day, 1000),  # after DM 1, before 2
            (t0 + 12 * day, 2000),  # after 2
            (t0 + 39 * day, 4000),  # still within 30 days of 2
            (t0 + 41 * day, 8000),  # more than 30 days after 2: nobody's
            (t0 - day, 16000),  # before any action
        ],
    )
    assert {k: (v.sales, v.orders) for k, v in got.items()} == {
        1: (1000, 1),
        2: (6000, 2),
        3: (0, 0),
    }


def test_actions_tab_in_time_order_with_sales_after_actions(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    other = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    koga = make_staff("koga", name="古賀 雅美")
    login(client, "koga")

    def order(
        number: str, days: float, total: int, status: str = "confirmed", who: int = cid
    ) -> Order:
        at = ago(days)
        return Order(
            number=number,
            customer_id=who,
            received_on=at.astimezone(JST).date(),
            created_at=at,
            total=total,
            status=status,
        )

    orders = [
        order("20240101-0000001", 55, 5000),
        order("20240101-0000002", 35, 3000),
        order("20240101-0000003", 38, 9000, status="cancelled"),
        order("20240101-0000004", 5, 7000),
        order("20240101-0000005", 54, 99999, who=other),
    ]
    order_ids = insert(database_url, *orders)
    insert(
        database_url,
        Action(customer_id=cid, kind="dm", occurred_at=ago(60), content="春のDM"),
        Action(customer_id=cid, kind="order", occurred_at=ago(55), content="受注 健康トニック",
               order_id=order_ids[0], amount=5000, staff_id=koga),
        Action(customer_id=cid, kind="call_out", occurred_at=ago(40), content="フォローコール",
               result="受注", staff_id=koga),
        Action(customer_id=cid, kind="mail", occurred_at=ago(20), content="メールマガジン6月号"),
        Action(customer_id=cid, kind="response", occurred_at=ago(2), content="問合せ: 使い方"),
        Action(customer_id=cid, kind="catalog", occurred_at=ago(500), content="総合カタログ"),
        Action(customer_id=other, kind="dm", occurred_at=ago(58), content="他人のDM"),
    )  # fmt: skip

    page = client.get(f"/customers/{cid}/actions")
    assert page.status_code == 200
    listed = section(page.text, "action-list")
    newest_first = (
        "問合せ: 使い方",
        "メールマガジン6月号",
        "フォローコール",
        "受注 健康トニック",
        "春のDM",
    )
    order_of = [listed.index(t) for t in newest_first]
    assert order_of == sorted(order_of)  # newest first
    assert "総合カタログ" not in listed and "他人のDM" not in listed  # older than 12 months
    for label in ("対応", "メール", "電話", "受注", "DM"):
        assert f'<span class="action-kind">{label}</span>' in listed
    assert "古賀 雅美" in listed and "20240101-0000001" in listed and "5,000円" in listed

    def attributed(content: str) -> str:
        row = listed[listed.index(content) :]
        cell = row[row.index('class="num nowrap attributed"') :]
        return cell[: cell.index("</td>")]

    assert "5,000円" in attributed("春のDM") and "（1件）" in attributed("春のDM")
    assert "3,000円" in attributed("フォローコール")  # the cancelled order does not count
    assert "7,000円" in attributed("メールマガジン6月号")
    summary = section(page.text, "action-summary")
    assert re.search(r'data-kind="dm">\s*<th scope="row">DM</th>\s*<td class="num">1</td>'
                     r'\s*<td class="num">1</td>\s*<td class="num">5,000円', summary)  # fmt: skip
    assert re.search(r'data-kind="catalog">\s*<th scope="row">カタログ</th>\s*'
                     r'<td class="num">0</td>', summary)  # fmt: skip

    r = client.get(
        f"/customers/{cid}/actions",
        params={"from": "", "to": "", "kind": "catalog"},
        headers=htmx(client, "action-history"),
    )
    assert r.status_code == 200 and 'class="monitor-head"' not in r.text
    listed = section(r.text, "action-list")
    assert "総合カタログ" in listed and "春のDM" not in listed

    r = client.get(f"/customers/{cid}/actions", params={"from": "2024/02/30"})
    assert r.status_code == 400 and "日付は 2015/01/01 の形式で入力してください。" in r.text


async def test_list_actions_pages_and_records_of_saved_responses(
    database_url: str, make_staff: Callable[..., int]
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    staff = make_staff("koga")
    engine = make_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            s.add_all(
                Action(customer_id=cid, kind="mail", occurred_at=ago(i + 1), content=f"メール{i}")
                for i in range(51)
            )
            await s.flush()
            await service.save_response(
                s,
                customer_id=cid,
                staff_id=staff,
                responded_at=NOW.astimezone(JST).strftime("%Y/%m/%d %H:%M"),
                category="問合せ",
                channel="メール",
                content="メールでの問合せ",
            )
            everything = service.DateRange(None, None)
            first = await service.list_actions(s, customer_id=cid, dates=everything)
            assert first.page.total == 52 and len(first.page.rows) == 50
            assert first.page.rows[0].kind == "response"
            assert first.page.rows[0].content == "問合せ: メールでの問合せ"
            second = await service.list_actions(s, customer_id=cid, dates=everything, page=9)
            assert second.page.page == 2 and [r.content for r in second.page.rows] == [
                "メール49",
                "メール50",
            ]
            only = await service.list_actions(s, customer_id=cid, dates=everything, kind="response")
            assert only.page.total == 1
            listed = await service.list_responses(
                s, customer_id=cid, dates=service.default_range(NOW.astimezone(JST).date())
            )
            assert [r.content for r in listed.rows] == ["メールでの問合せ"]
    finally:
        await engine.dispose()
