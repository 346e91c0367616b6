"""顧客詳細 (M3), its change history (M7), ship-tos (M8) and the カルテ's privacy (M5)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.testclient import TestClient

from app.audit.models import AuditLog
from app.customers import editing
from app.customers.editing import (
    DetailForm,
    EditConflict,
    PhoneRow,
    form_from_customer,
    form_from_json,
    form_to_json,
    load_customer,
    merge_forms,
    update_customer,
)
from app.customers.models import Customer, CustomerEmail, ShipTo
from app.customers.service import CustomerInputError
from app.customers.shiptos import ShipToForm, add_ship_to, list_ship_tos, set_ship_to_active
from app.db import make_engine, make_sessionmaker, transaction
from tests.conftest import csrf_of, login, run_async
from tests.factories import add_customer

TODAY = dt.date(2025, 6, 1)
HX = {"HX-Request": "true"}


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def taro(url: str, **kw: Any) -> int:
    return add_customer(
        url,
        "佐賀 太郎",
        "サガ タロウ",
        "0952-32-6611",
        postcode="840-0806",
        karte=kw.pop("karte", "右ひざの痛み"),
        alert="耳が遠い方なので大きい声でお願いします",
        **kw,
    )


async def _set(url: str, cid: int, cols: dict[str, Any]) -> None:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            customer = await s.get(Customer, cid)
            assert customer is not None
            for key, value in cols.items():
                setattr(customer, key, value)
    finally:
        await engine.dispose()


def set_columns(url: str, cid: int, **cols: Any) -> None:
    run_async(_set(url, cid, cols))


async def _customer(url: str, cid: int) -> Customer:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            customer = await load_customer(s, customer_id=cid)
            assert customer is not None
            return customer
    finally:
        await engine.dispose()


def stored(url: str, cid: int) -> Customer:
    """The customer as stored now (phones and e-mails loaded)."""
    customer: Customer = run_async(_customer(url, cid))
    return customer


async def _audit(url: str, cid: int) -> list[AuditLog]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            rows = await s.scalars(
                select(AuditLog)
                .where(AuditLog.entity == "customer", AuditLog.entity_id == cid)
                .order_by(AuditLog.id)
            )
            return list(rows.all())
    finally:
        await engine.dispose()


def audit(url: str, cid: int, action: str | None = None) -> list[AuditLog]:
    rows: list[AuditLog] = run_async(_audit(url, cid))
    return [r for r in rows if action is None or r.action == action]


class _FormFields(HTMLParser):
    """The fields a browser would submit from the form ``form_id``."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.depth = 0
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected = False
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            if self.depth or a.get("id") == self.form_id:
                self.depth += 1
            return
        if not self.depth:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select, self._first_option, self._selected = name, None, False
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if "value" not in a:
                value = "\0"  # text content follows
            if self._first_option is None:
                self._first_option = value
            if "selected" in a:
                self.fields.append((self._select, value))
                self._selected = True
        elif tag == "textarea":
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data
        elif self._select is not None and self.fields and self.fields[-1] == (self._select, "\0"):
            self.fields[-1] = (self._select, data)
        elif self._select is not None and self._first_option == "\0":
            self._first_option = data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.depth:
            self.depth -= 1
        elif tag == "select" and self._select is not None:
            if not self._selected:
                self.fields.append((self._select, self._first_option or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def form_fields(html: str, form_id: str = "detail-form") -> list[tuple[str, str]]:
    parser = _FormFields(form_id)
    parser.feed(html)
    assert parser.fields, f"no form #{form_id}"
    return parser.fields


def with_values(fields: list[tuple[str, str]], **values: str) -> list[tuple[str, str]]:
    """Replace the (first) value of these fields."""
    out, done = [], set()
    for name, value in fields:
        if name in values and name not in done:
            out.append((name, values[name]))
            done.add(name)
        else:
            out.append((name, value))
    out += [(k, v) for k, v in values.items() if k not in done]
    return out


def error_beside(html: str, field_id: str) -> str:
    """The message in the error paragraph of the field holding ``#field_id``."""
    m = re.search(
        rf'<div class="field[^"]*has-error[^"]*">(?:(?!</div>).)*id="{field_id}"'
        rf'(?:(?!</div>).)*<p class="error"[^>]*>([^<]+)</p>',
        html,
        re.S,
    )
    assert m, f"no error beside #{field_id}"
    return m.group(1)


def operator(client: TestClient, make_staff: Callable[..., int], login_id: str = "op") -> int:
    sid = make_staff(login_id, name="古賀 雅美")
    login(client, login_id)
    return sid


def two_sessions(client: TestClient, *logins: str) -> list[dict[str, str]]:
    """Log each staff member in on their own session (cookie jar) of the same app — two
    browsers, one server."""
    jars = []
    for login_id in logins:
        client.cookies.clear()
        login(client, login_id)
        jars.append(dict(client.cookies))
    return jars


def post_form(client: TestClient, url: str, fields: list[tuple[str, str]], **kw: Any) -> Any:
    """POST urlencoded fields with repeated names (phones, e-mails, flags) as a form would."""
    from urllib.parse import urlencode

    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": csrf_of(client),
        **kw.pop("headers", {}),
    }
    return client.post(url, content=urlencode(fields), headers=headers, **kw)


# --- the service ----------------------------------------------------------------------------


def _form(**kw: Any) -> DetailForm:
    base: dict[str, Any] = {
        "phones": [PhoneRow("0952-32-6611", "home", "")],
        "name": "佐賀 太郎",
        "kana": "サガ タロウ",
        "postcode": "840-0806",
        "prefecture": "佐賀県",
        "city": "佐賀市",
        "street": "鍋島3-2",
        "alert": "耳が遠い方なので大きい声でお願いします",
        "karte": None,
    }
    base.update(kw)
    return DetailForm(**base)


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        ({"name": "  "}, "name", "顧客名を入力してください。"),
        ({"name": "あ" * 101}, "name", "顧客名は100文字以内で入力してください。"),
        ({"kana": "佐賀"}, "kana", "顧客名かなはひらがなかカタカナで入力してください。"),
        ({"kana": "サ" * 101}, "kana", "顧客名かなは100文字以内で入力してください。"),
        ({"postcode": "840-080"}, "postcode", "郵便番号は7桁の数字で入力してください"),
        ({"prefecture": "佐賀"}, "prefecture", "県名を一覧から選んでください。"),
        ({"street": "1" * 201}, "street", "番地は200文字以内で入力してください。"),
        ({"building": "b" * 201}, "building", "マンション・ビルは200文字以内で入力してください。"),
        ({"company1": "c" * 201}, "company1", "会社部署名1は200文字以内で入力してください。"),
        ({"birth_date": "昭和70年1月1日"}, "birth_date", "昭和の期間外です。"),
        ({"birth_date": "2030/1/1"}, "birth_date", "生年月日が未来の日付です。"),
        ({"birth_date": "1970/2/30"}, "birth_date", "存在しない日付です。"),
        ({"birth_date": "きのう"}, "birth_date", "生年月日は 1970/4/1、"),
        ({"gender": "X"}, "gender", "性別を選んでください。"),
        (
            {"phones": [PhoneRow("0952-32-6611"), PhoneRow("12-34")]},
            "phones.1",
            "電話番号の形式が正しくありません",
        ),
        (
            {"phones": [PhoneRow("0952-32-6611"), PhoneRow("０９５２３２６６１１", "office")]},
            "phones.1",
            "同じ電話番号が重複しています。",
        ),
        ({"phones": [PhoneRow("", "home", "本人")]}, "phones.0", "電話番号を入力してください。"),
        ({"emails": ["taro@example"]}, "emails.0", "メールアドレスの形式が正しくありません"),
        ({"emails": ["a@b.jp", "A@B.JP"]}, "emails.1", "同じメールアドレスが重複しています。"),
        ({"alert": "!" * 501}, "alert", "アラートは500文字以内で入力してください。"),
        ({"memo": "m" * 4001}, "memo", "メモは4000文字以内で入力してください。"),
    ],
)
async def test_each_bad_field_has_its_message_and_nothing_is_written(
    database_url: str,
    maker: async_sessionmaker[AsyncSession],
    change: dict[str, Any],
    key: str,
    message: str,
) -> None:
    cid = taro(database_url)
    v0 = stored(database_url, cid).version
    form = _form(**{"memo": "変更したメモ", **change})
    async with transaction(maker) as s:
        with pytest.raises(CustomerInputError) as exc:
            await update_customer(
                s, customer_id=cid, version=v0, form=form, staff_id=None, today=TODAY
            )
    assert message in exc.value.errors[key]
    customer = stored(database_url, cid)
    assert (customer.memo, customer.version) == ("", v0)
    assert audit(database_url, cid) == []


async def test_save_normalises_and_records_only_the_changed_fields(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    cid = taro(database_url)
    set_columns(database_url, cid, flags={"legacy_import": "x"})
    v0 = stored(database_url, cid).version
    form = _form(
        phones=[
            PhoneRow("０９０ー１２３４ー５６７８", "mobile", "本人"),
            PhoneRow("0952-32-6611", "home", ""),
        ],
        name="佐賀　次郎",
        kana="ｻｶﾞ じろう",
        postcode="〒８４０００２７",
        birth_date="S45.4.1",
        gender="M",
        emails=[" Jiro@Example.JP ", ""],
        flags=["no_call", "vip"],
        karte=None,
    )
    async with transaction(maker) as s:
        changes = await update_customer(
            s,
            customer_id=cid,
            version=v0,
            form=form,
            staff_id=None,
            purpose="ご本人より携帯番号のご連絡",
            today=TODAY,
        )
    assert set(changes) == {
        "phones",
        "name",
        "kana",
        "postcode",
        "birth_date",
        "gender",
        "emails",
        "flags",
    }
    c = stored(database_url, cid)
    assert (c.name, c.name_key, c.kana, c.kana_key) == (
        "佐賀　次郎",
        "佐賀次郎",
        "サガ ジロウ",
        "サガジロウ",
    )
    assert (c.postcode, c.birth_date, c.gender) == ("840-0027", dt.date(1970, 4, 1), "M")
    assert [(p.e164, p.last8, p.kind, p.label, p.position) for p in c.phones] == [
        ("+819012345678", "12345678", "mobile", "本人", 0),
        ("+81952326611", "52326611", "home", "", 1),
    ]
    assert [e.address for e in c.emails] == ["jiro@example.jp"]
    assert c.no_call is True
    assert c.flags == {"legacy_import": "x", "vip": True}
    assert c.karte == "右ひざの痛み"  # not part of a form without カルテ
    assert c.version == v0 + 1
    (entry,) = audit(database_url, cid, "update")
    assert entry.purpose == "ご本人より携帯番号のご連絡"
    assert entry.changes == {
        "phones": [
            ["0952-32-6611（自宅）"],
            ["090-1234-5678（携帯・本人）", "0952-32-6611（自宅）"],
        ],
        "name": ["佐賀 太郎", "佐賀　次郎"],
        "kana": ["サガ タロウ", "サガ ジロウ"],
        "postcode": ["840-0806", "840-0027"],
        "birth_date": [None, "1970-04-01"],
        "gender": ["", "M"],
        "emails": [[], ["jiro@example.jp"]],
        "flags": [[], ["電話不可", "優待"]],
    }

    # Saving the same data again changes nothing and writes nothing.
    async with transaction(maker) as s:
        customer = await load_customer(s, customer_id=cid)
        assert customer is not None
        same = form_from_customer(customer, with_karte=True)
        again = await update_customer(
            s, customer_id=cid, version=v0 + 1, form=same, staff_id=None, today=TODAY
        )
    assert again == {}
    assert stored(database_url, cid).version == v0 + 1
    assert len(audit(database_url, cid, "update")) == 1


async def test_a_stale_version_is_a_conflict_and_writes_nothing(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    cid = taro(database_url)
    v0 = stored(database_url, cid).version
    async with transaction(maker) as s:
        await update_customer(
            s, customer_id=cid, version=v0, form=_form(memo="先の更新"), staff_id=None
        )
    async with maker() as s:
        with pytest.raises(EditConflict) as exc:
            await update_customer(
                s, customer_id=cid, version=v0, form=_form(memo="後の更新"), staff_id=None
            )
    assert exc.value.current_version == v0 + 1
    assert stored(database_url, cid).memo == "先の更新"


async def test_a_save_racing_between_read_and_write_is_a_conflict(
    database_url: str, maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another operator's save lands after this one read the row: the version-checked
    UPDATE matches nothing (StaleDataError) — a conflict, nothing written."""
    cid = taro(database_url)
    v0 = stored(database_url, cid).version
    other = make_engine(database_url)
    async with maker() as s:
        customer = await editing.load_customer(s, customer_id=cid)
        assert customer is not None and customer.version == v0
        async with other.begin() as conn:  # the other operator, after this read
            await conn.execute(
                text("UPDATE customers SET memo = '割り込み', version = version + 1 WHERE id = :i"),
                {"i": cid},
            )

        async def read_before_the_other_save(
            session: AsyncSession, *, customer_id: int
        ) -> Customer:
            return customer

        monkeypatch.setattr(editing, "load_customer", read_before_the_other_save)
        with pytest.raises(EditConflict) as exc:
            await update_customer(
                s, customer_id=cid, version=v0, form=_form(memo="私の更新"), staff_id=None
            )
        await s.rollback()
    await other.dispose()
    assert exc.value.current_version is None
    assert stored(database_url, cid).memo == "割り込み"
    assert audit(database_url, cid, "update") == []


def test_merge_without_a_usable_original_proposes_my_input() -> None:
    theirs = _form(name="佐賀 太一")
    mine = _form(memo="メモ", emails=["taro@example.jp"])
    assert form_from_json(form_to_json(mine)) == mine
    for bad in ('{"phones": 5}', '{"phones": [], "postcode": 8400806}', "not json"):
        assert form_from_json(bad) is None
    merged, rows = merge_forms(original=None, mine=mine, theirs=theirs)
    assert (merged.name, merged.memo) == ("佐賀 太郎", "メモ")
    assert [(r.key, r.theirs, r.mine) for r in rows] == [
        ("name", "佐賀 太一", "佐賀 太郎"),
        ("emails", "", "taro@example.jp"),
        ("memo", "", "メモ"),
    ]
    # with the original: my untouched name takes theirs; the same number typed differently
    # is no difference
    mine.phones = [PhoneRow("0952326611")]
    merged, rows = merge_forms(original=_form(), mine=mine, theirs=theirs)
    assert merged.name == "佐賀 太一"
    assert [r.key for r in rows] == ["name", "emails", "memo"]
    assert not any(r.clash for r in rows)


async def test_karte_saved_only_from_a_form_that_has_it(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    cid = taro(database_url)
    v0 = stored(database_url, cid).version
    async with transaction(maker) as s:
        changes = await update_customer(
            s, customer_id=cid, version=v0, form=_form(karte="花粉症"), staff_id=None
        )
    assert changes == {"karte": ["右ひざの痛み", "花粉症"]}
    assert stored(database_url, cid).karte == "花粉症"


async def test_ship_tos_are_retired_never_deleted(
    database_url: str, maker: async_sessionmaker[AsyncSession]
) -> None:
    cid = taro(database_url)
    async with transaction(maker) as s:
        with pytest.raises(CustomerInputError) as exc:
            await add_ship_to(
                s,
                customer_id=cid,
                form=ShipToForm(name="", postcode="12", phone="abc"),
                staff_id=None,
            )
        assert exc.value.errors == {
            "name": "氏名を入力してください。",
            "postcode": "郵便番号は7桁の数字で入力してください（例: 840-0806）。",
            "prefecture": "県名を選んでください。",
            "city": "市町村名を入力してください。",
            "street": "番地を入力してください。",
            "phone": "電話番号の形式が正しくありません（例: 0952-32-6611）。",
        }
        office = await add_ship_to(
            s,
            customer_id=cid,
            form=ShipToForm(
                label="勤務先",
                name="佐賀 太郎",
                kana="さが たろう",
                postcode="8100001",
                prefecture="福岡県",
                city="福岡市中央区",
                street="天神1-1-1",
                phone="092-111-2222",
            ),
            staff_id=None,
        )
    async with transaction(maker) as s:
        await set_ship_to_active(
            s, customer_id=cid, ship_to_id=office.id, active=False, staff_id=None
        )
    async with maker() as s:
        assert await list_ship_tos(s, customer_id=cid) == []
        (kept,) = await list_ship_tos(s, customer_id=cid, include_retired=True)
    assert (kept.active, kept.kana, kept.postcode, kept.phone) == (
        False,
        "サガ タロウ",
        "810-0001",
        "092-111-2222",
    )
    assert [a.action for a in audit(database_url, cid)] == ["ship_to_add", "ship_to_retire"]


# --- the tab through the browser's eyes -----------------------------------------------------


def test_detail_tab_is_a_form_with_every_field(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url, birth_date=dt.date(1970, 4, 1), no_call=True)
    v0 = stored(database_url, cid).version
    operator(client, make_staff)
    r = client.get(f"/customers/{cid}")
    assert r.status_code == 200
    html = r.text
    for label in (
        "電話番号",
        "顧客名",
        "顧客名かな",
        "郵便番号",
        "県名",
        "市町村名",
        "番地",
        "マンション・ビル",
        "会社部署名1",
        "会社部署名2",
        "生年月日",
        "性別",
        "DM",
        "メールアドレス",
        "フラグ",
        "アラート",
        "カルテ",
        "メモ",
        "更新目的",
        "送付先",
        "変更履歴",
    ):
        assert f">{label}" in html, label
    fields = dict(form_fields(html))
    assert fields["phone_number"] == "0952-32-6611"
    assert fields["prefecture"] == "佐賀県"
    assert fields["birth_date"] == "1970/04/01"
    assert "昭和45年4月1日" in html
    assert fields["flag"] == "no_call"
    assert fields["karte"] == "右ひざの痛み"
    assert fields["version"] == str(v0)
    assert 'data-fkey="F1" data-target="#detail-save"' in html
    assert len(re.findall(r"<option(?: selected)?>[^<]+[都道府県]</option>", html)) == 47
    # the operator's view of the カルテ is logged
    (view,) = audit(database_url, cid, "view_karte")
    assert view.staff_id is not None


def test_karte_is_hidden_from_back_office_and_kept_on_their_save(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url)
    make_staff("bo", role="backoffice", name="経理 花子")
    login(client, "bo")
    html = client.get(f"/customers/{cid}").text
    assert "右ひざの痛み" not in html
    assert "カルテあり" in html
    fields = form_fields(html)
    assert "karte" not in dict(fields)
    # a karte smuggled into the post is ignored
    r = post_form(
        client,
        f"/customers/{cid}",
        with_values(fields, memo="住所確認済み", karte="書き換え"),
        headers=HX,
    )
    assert r.status_code == 200, r.text
    c = stored(database_url, cid)
    assert (c.memo, c.karte) == ("住所確認済み", "右ひざの痛み")
    assert audit(database_url, cid, "view_karte") == []


@pytest.mark.parametrize(
    ("field", "value", "field_id", "message"),
    [
        ("name", "", "detail-name", "顧客名を入力してください。"),
        ("phone_number", "0952-32", "", "電話番号の形式が正しくありません（例: 0952-32-6611）。"),
        ("postcode", "84000", "detail-postcode", "郵便番号は7桁の数字で入力してください"),
        ("birth_date", "令和30年1月1日", "detail-birth", "生年月日が未来の日付です。"),
        ("birth_date", "H31.5.1", "detail-birth", "平成31年5月1日は平成の期間外です。"),
        ("city", "市" * 101, "detail-city", "市町村名は100文字以内で入力してください。"),
        ("email", "taro@@example.jp", "", "メールアドレスの形式が正しくありません"),
        ("purpose", "目" * 201, "detail-purpose", "更新目的は200文字以内で入力してください。"),
    ],
)
def test_bad_input_is_shown_beside_the_field_and_nothing_written(
    client: TestClient,
    make_staff: Callable[..., int],
    database_url: str,
    field: str,
    value: str,
    field_id: str,
    message: str,
) -> None:
    cid = taro(database_url)
    operator(client, make_staff)
    fields = form_fields(client.get(f"/customers/{cid}").text)
    fields = with_values(fields, memo="書いたメモ", **{field: value})
    r = post_form(client, f"/customers/{cid}", fields, headers=HX)
    assert r.status_code == 400
    assert "入力内容に誤りがあります" in r.text
    if field_id:
        assert message in error_beside(r.text, field_id)
    else:
        row = "phone-row" if field == "phone_number" else "email-row"
        m = re.search(rf'<li class="{row} has-error">.*?<p class="error">([^<]+)</p>', r.text, re.S)
        assert m is not None and message in m.group(1)
    # what was typed stays in the form
    assert dict(form_fields(r.text))["memo"] == "書いたメモ"
    assert stored(database_url, cid).memo == ""
    assert audit(database_url, cid, "update") == []


def test_saving_refreshes_the_header_and_writes_history_with_purpose(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url)
    v0 = stored(database_url, cid).version
    operator(client, make_staff)
    fields = form_fields(client.get(f"/customers/{cid}").text)
    fields = with_values(fields, name="佐賀 太郎左衛門", purpose="改名のご連絡")
    fields += [("phone_number", "090-9999-9999"), ("phone_kind", "mobile"), ("phone_label", "")]
    r = post_form(client, f"/customers/{cid}", fields, headers=HX)
    assert r.status_code == 200, r.text
    assert "保存しました" in r.text
    # the out-of-band header shows the new name and phone
    head = r.text[r.text.index('id="monitor-head"') :]
    assert 'hx-swap-oob="true"' in head[:60]
    assert "佐賀 太郎左衛門" in head and "090-9999-9999" in head
    # the new form carries the new version
    assert dict(form_fields(r.text))["version"] == str(v0 + 1)

    # a second save, then the history: newest first, Japanese labels, purpose, changed only
    fields = with_values(form_fields(r.text), city="佐賀市大和町", purpose="")
    assert post_form(client, f"/customers/{cid}", fields, headers=HX).status_code == 200
    html = client.get(f"/customers/{cid}/history").text
    assert 'aria-selected="true"' in html and "顧客詳細" in html  # inside the monitor
    rows = re.findall(r'<tr class="history-entry action-(\w+)">(.*?)</tr>', html, re.S)
    actions = [a for a, _ in rows]
    assert actions[:2] == ["update", "update"]
    newest, older = rows[0][1], rows[1][1]
    assert "市町村名" in newest and "佐賀市大和町" in newest and "顧客名" not in newest
    assert "古賀 雅美" in newest
    assert "顧客名" in older and "佐賀 太郎左衛門" in older and "改名のご連絡" in older
    assert "電話番号" in older and "090-9999-9999" in older
    assert "市町村名" not in older
    assert "view_karte" in actions  # カルテ views are listed too
    # the detail tab shows the latest entries as well
    detail = client.get(f"/customers/{cid}").text
    assert "改名のご連絡" in detail


def test_history_lists_registration_and_merges_and_pages(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url, prefecture="佐賀")  # a legacy value outside the list

    async def log(n: int) -> None:
        from app.audit.service import record

        engine = make_engine(database_url)
        async with transaction(make_sessionmaker(engine)) as s:
            await record(
                s, action="create", entity="customer", entity_id=cid, changes={"name": "佐賀 太郎"}
            )
            await record(
                s,
                action="merge",
                entity="customer",
                entity_id=cid,
                changes={"source_id": 77, "target_id": cid},
                purpose="重複登録のため",
            )
            for _ in range(n):
                await record(s, action="view_karte", entity="customer", entity_id=cid)
        await engine.dispose()

    run_async(log(60))
    operator(client, make_staff)
    detail = client.get(f"/customers/{cid}").text
    # the legacy prefecture is still shown (and must be corrected before saving)
    assert "<option selected>佐賀</option>" in detail
    r = post_form(client, f"/customers/{cid}", form_fields(detail), headers=HX)
    assert r.status_code == 400 and "県名を一覧から選んでください。" in r.text

    html = client.get(f"/customers/{cid}/history", params={"kind": "changes"}).text
    assert "新規登録" in html and "統合" in html and "重複登録のため" in html
    assert "統合元" in html and "00000077" in html
    assert "カルテ閲覧</td>" not in html
    page1 = client.get(f"/customers/{cid}/history").text
    assert page1.count('class="history-entry') == 50
    m = re.search(r'href="(/customers/\d+/history\?before=\d+)"', page1)
    assert m is not None
    page2 = client.get(m.group(1).replace("&amp;", "&")).text
    assert page2.count('class="history-entry') == 13  # 61 views (one by this GET) + 2
    assert "新規登録" in page2


def test_history_hides_karte_contents_from_back_office(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url)
    operator(client, make_staff)
    fields = form_fields(client.get(f"/customers/{cid}").text)
    r = post_form(
        client, f"/customers/{cid}", with_values(fields, karte="そばアレルギー"), headers=HX
    )
    assert r.status_code == 200
    assert "そばアレルギー" in client.get(f"/customers/{cid}/history").text
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    make_staff("bo", role="backoffice")
    login(client, "bo")
    html = client.get(f"/customers/{cid}/history").text
    assert "そばアレルギー" not in html and "右ひざの痛み" not in html
    assert "カルテの閲覧権限がありません" in html
    assert "カルテ閲覧" in html  # who looked at it is not secret


def test_two_operators_the_second_gets_a_conflict_and_can_reapply(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url)
    v0 = stored(database_url, cid).version
    make_staff("koga", name="古賀 雅美")
    make_staff("yamada", name="山田 花子")
    koga, yamada = two_sessions(client, "koga", "yamada")
    client.cookies = koga
    mine = form_fields(client.get(f"/customers/{cid}").text)
    client.cookies = yamada
    theirs = form_fields(client.get(f"/customers/{cid}").text)

    # 山田 saves first: a new street
    r = post_form(client, f"/customers/{cid}", with_values(theirs, street="鍋島5-1"), headers=HX)
    assert r.status_code == 200
    # 古賀 saves from the old version: a new memo and his own street
    client.cookies = koga
    typed = with_values(mine, memo="折り返し希望", street="鍋島9-9")
    r = post_form(client, f"/customers/{cid}", typed, headers=HX)
    assert r.status_code == 409
    assert "他のオペレータが先に更新しました" in r.text
    rows = {
        key: (them, me)
        for key, them, me in re.findall(
            r'data-field="(\w+)">.*?<td class="theirs">([^<]*)</td>'
            r'\s*<td class="mine">([^<]*)</td>',
            r.text,
            re.S,
        )
    }
    assert rows == {"street": ("鍋島5-1", "鍋島9-9"), "memo": ("（なし）", "折り返し希望")}
    assert re.search(r'data-field="street">\s*<th>番地 <span class="badge warn">両方で変更', r.text)
    c = stored(database_url, cid)
    assert (c.street, c.memo, c.version) == ("鍋島5-1", "", v0 + 1)

    # the form now holds his input on the new version; he keeps 山田's street and saves
    again = form_fields(r.text)
    assert dict(again)["version"] == str(v0 + 1)
    assert dict(again)["memo"] == "折り返し希望"
    r = post_form(client, f"/customers/{cid}", with_values(again, street="鍋島5-1"), headers=HX)
    assert r.status_code == 200, r.text
    c = stored(database_url, cid)
    assert (c.street, c.memo, c.version) == ("鍋島5-1", "折り返し希望", v0 + 2)


def test_conflict_keeps_the_other_operators_change_of_a_field_i_did_not_touch(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url)
    make_staff("koga")
    make_staff("yamada")
    koga, yamada = two_sessions(client, "koga", "yamada")
    client.cookies = koga
    mine = form_fields(client.get(f"/customers/{cid}").text)
    client.cookies = yamada
    theirs = form_fields(client.get(f"/customers/{cid}").text)
    post_form(client, f"/customers/{cid}", with_values(theirs, name="佐賀 太一"), headers=HX)
    client.cookies = koga
    r = post_form(client, f"/customers/{cid}", with_values(mine, memo="メモ"), headers=HX)
    assert r.status_code == 409
    merged = dict(form_fields(r.text))
    assert (merged["name"], merged["memo"]) == ("佐賀 太一", "メモ")
    assert post_form(client, f"/customers/{cid}", form_fields(r.text), headers=HX).is_success
    c = stored(database_url, cid)
    assert (c.name, c.memo) == ("佐賀 太一", "メモ")


def test_plain_form_post_redirects_with_a_notice(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url)
    operator(client, make_staff)
    fields = form_fields(client.get(f"/customers/{cid}").text)
    r = post_form(client, f"/customers/{cid}", with_values(fields, building="サガビル101"))
    assert r.status_code == 200 and r.url.path == f"/customers/{cid}"
    assert "保存しました" in r.text
    assert stored(database_url, cid).building == "サガビル101"


def test_rows_to_add_phones_and_emails(client: TestClient, make_staff: Callable[..., int]) -> None:
    operator(client, make_staff)
    cid = 1
    phone = client.get(f"/customers/{cid}/detail/rows/phone", headers=HX).text
    assert 'name="phone_number"' in phone and "autofocus" in phone and "携帯" in phone
    email = client.get(f"/customers/{cid}/detail/rows/email", headers=HX).text
    assert 'name="email"' in email and "autofocus" in email
    assert client.get(f"/customers/{cid}/detail/rows/fax", headers=HX).status_code == 404


def test_postcode_fills_the_address_or_says_why_not(
    client: TestClient, make_staff: Callable[..., int]
) -> None:
    operator(client, make_staff)
    r = client.get(
        "/postcode", params={"postcode": "８４０−０８０６", "prefix": "detail-"}, headers=HX
    )
    assert r.status_code == 200
    assert "<option selected>佐賀県</option>" in r.text
    assert 'id="detail-city" name="city" value="佐賀市"' in r.text
    assert 'id="detail-street" name="street" value="神園"' in r.text
    assert re.search(r'id="detail-postcode-msg"[^>]*hx-swap-oob="true">\s*</p>', r.text)
    # a street number already typed after the town is kept
    r = client.get("/postcode", params={"code": "8400806", "street": "神園3-2"}, headers=HX)
    assert 'name="street" value="神園3-2"' in r.text
    # unknown and malformed postcodes: a message, the typed address kept
    r = client.get(
        "/postcode",
        params={"postcode": "0000000", "prefix": "st-", "city": "唐津市", "prefecture": "佐賀県"},
        headers=HX,
    )
    assert "この郵便番号は見つかりません" in r.text
    assert 'id="st-city" name="city" value="唐津市"' in r.text
    assert "<option selected>佐賀県</option>" in r.text
    r = client.get("/postcode", params={"postcode": "12-34"}, headers=HX)
    assert "郵便番号は7桁の数字で入力してください" in r.text
    # a postcode covering several towns offers them
    r = client.get("/postcode", params={"postcode": "4520961"}, headers=HX)
    assert "<datalist" in r.text and "愛知県" in r.text


def test_ship_to_add_edit_retire_through_the_tab(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = taro(database_url)
    operator(client, make_staff)
    html = client.get(f"/customers/{cid}/ship-tos/new", headers=HX).text
    fields = form_fields(html, "ship-to-form")
    r = post_form(client, f"/customers/{cid}/ship-tos", with_values(fields, name=""), headers=HX)
    assert r.status_code == 400
    assert error_beside(r.text, "st-name") == "氏名を入力してください。"
    assert run_async(_ship_tos(database_url, cid)) == []

    gift = with_values(
        fields,
        label="ギフト",
        name="北田 君子",
        kana="きただ きみこ",
        postcode="880-0001",
        prefecture="宮崎県",
        city="宮崎市",
        street="橘通西1-1",
    )
    r = post_form(client, f"/customers/{cid}/ship-tos", gift, headers=HX)
    assert r.status_code == 200, r.text
    assert "送付先を追加しました" in r.text and "北田 君子" in r.text
    (sid,) = [s.id for s in run_async(_ship_tos(database_url, cid))]

    html = client.get(f"/customers/{cid}/ship-tos/{sid}/edit", headers=HX).text
    fields = with_values(form_fields(html, "ship-to-form"), building="橘ハイツ202")
    r = post_form(client, f"/customers/{cid}/ship-tos/{sid}", fields, headers=HX)
    assert "送付先を変更しました" in r.text and "橘ハイツ202" in r.text

    r = post_form(client, f"/customers/{cid}/ship-tos/{sid}/retire", [], headers=HX)
    assert "使用停止にしました" in r.text and 'class="ship-to retired"' in r.text
    (kept,) = run_async(_ship_tos(database_url, cid))
    assert (kept.active, kept.building) == (False, "橘ハイツ202")
    # another customer's ship-to cannot be touched through this one
    other = add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    r = post_form(client, f"/customers/{other}/ship-tos/{sid}/restore", [], headers=HX)
    assert r.status_code == 404
    history = client.get(f"/customers/{cid}/history").text
    for label in ("送付先の追加", "送付先の変更", "送付先の使用停止"):
        assert label in history
    assert "マンション・ビル" in history and "橘ハイツ202" in history


async def _ship_tos(url: str, cid: int) -> list[ShipTo]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            return list((await s.scalars(select(ShipTo).where(ShipTo.customer_id == cid))).all())
    finally:
        await engine.dispose()


def test_merged_customer_is_read_only(
    client: TestClient, make_staff: Callable[..., int], database_url: str
) -> None:
    target = taro(database_url)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "090-1111-2222")

    async def merge() -> None:
        engine = make_engine(database_url)
        async with transaction(make_sessionmaker(engine)) as s:
            c = await s.get(Customer, cid)
            assert c is not None
            c.merged_into_id = target
            s.add(CustomerEmail(customer_id=cid, address="x@example.jp"))
        await engine.dispose()

    run_async(merge())
    operator(client, make_staff)
    html = client.get(f"/customers/{cid}").text
    assert "統合済みのため編集できません" in html
    assert '<fieldset class="detail-fields" disabled>' in html
    fields = form_fields(html)
    r = post_form(client, f"/customers/{cid}", with_values(fields, memo="x"), headers=HX)
    assert r.status_code == 400
    assert stored(database_url, cid).memo == ""
