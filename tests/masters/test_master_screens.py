"""マスタ管理 screens over HTTP: who may open them, list and search, validation with messages
beside the fields and nothing written, create, edit, retire and reactivate (never delete)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from app.masters.models import Campaign, Product
from app.orders.models import Order, OrderLine
from tests.conftest import csrf_of, login
from tests.factories import add_customer, add_masters
from tests.masters.helpers import db_run, error_of, post, text_of
from tests.masters.test_master_csv import apply_form, upload


@pytest.fixture
def admin(client: Any, database_url: str, make_staff: Callable[..., int]) -> Any:
    add_masters(database_url)
    make_staff("boss", role="admin", name="管理 太郎")
    make_staff("office", role="backoffice", name="事務 花子")
    make_staff("op", role="operator", name="古賀 雅美")
    login(client, "office")
    return client


def products(url: str) -> dict[str, Product]:
    async def fn(s: Any) -> dict[str, Product]:
        return {p.code: p for p in await s.scalars(select(Product))}

    return dict(db_run(url, fn))


def test_index_lists_every_master_and_operators_may_not_open_it(admin: Any) -> None:
    page = admin.get("/masters")
    assert page.status_code == 200
    for title in (
        "担当者マスタ",
        "広告マスタ",
        "商品分類マスタ",
        "商品マスタ",
        "送付先・送料マスタ",
        "セット商品マスタ",
        "FAQ管理",
        "キャンペーン管理",
        "ランクマスタ",
        "解約(返品)理由マスタ",
        "アンケートマスタ",
        "アンケート設問",
        "アンケート回答選択肢",
    ):
        assert title in page.text
    login(admin, "op")
    assert admin.get("/masters").status_code == 403
    assert admin.get("/masters/products").status_code == 403


def test_list_search_and_paging(admin: Any) -> None:
    page = admin.get("/masters/products?q=トニック")
    text = text_of(page.text)
    assert "健康トニック" in text and "ひざサポーター" not in text
    shipping = admin.get("/masters/shipping")
    assert "全94件中 1〜50件" in text_of(shipping.text)
    second = admin.get("/masters/shipping?page=2")
    assert "全94件中 51〜94件" in text_of(second.text)
    assert "佐賀県" in admin.get("/masters/shipping?q=佐賀").text


def test_bad_input_is_shown_beside_the_fields_and_nothing_is_written(
    admin: Any, database_url: str
) -> None:
    before = len(products(database_url))
    r = post(
        admin,
        "/masters/products/new",
        {
            "code": "10001",  # taken
            "name": "",
            "price": "abc",
            "tax_class": "standard",
            "category_id": "77",
            "sale_from": "2025/05/01",
            "sale_to": "2025/04/01",
        },
    )
    assert r.status_code == 422
    assert error_of(r.text, "name") == "商品名を入力してください。"
    assert error_of(r.text, "price") == "価格（税抜）は半角の整数で入力してください。"
    assert error_of(r.text, "category_id") == "商品分類コード「77」は登録されていません。"
    assert len(products(database_url)) == before
    # the period and the duplicate code are checked once the fields are fine
    r = post(
        admin,
        "/masters/products/new",
        {
            "code": "10001",
            "name": "新商品",
            "price": "1000",
            "tax_class": "standard",
            "sale_from": "2025/05/01",
            "sale_to": "2025/04/01",
        },
    )
    assert error_of(r.text, "sale_to") == "販売終了日は開始日以降の日付にしてください。"
    r = post(
        admin,
        "/masters/products/new",
        {"code": "10001", "name": "新商品", "price": "1000", "tax_class": "standard"},
    )
    assert r.status_code == 422
    assert error_of(r.text, "code") == "この商品コードは既に登録されています。"
    assert len(products(database_url)) == before


def test_create_edit_retire_and_reactivate_a_product(admin: Any, database_url: str) -> None:
    r = post(
        admin,
        "/masters/products/new",
        {
            "code": "60001",
            "name": "黒酢ドリンク",
            "kana": "クロズドリンク",
            "category_id": "10",
            "price": "4,500",
            "cost": "1200",
            "tax_class": "reduced",
            "subscribable": "1",
        },
    )
    assert r.status_code == 303
    listed = admin.get(r.headers["location"])
    assert "「黒酢ドリンク」を登録しました。" in listed.text
    p = products(database_url)["60001"]
    assert (p.price, p.cost, p.tax_class, p.subscribable, p.is_present, p.active) == (
        4500,
        1200,
        "reduced",
        True,
        False,
        True,
    )
    form = admin.get(f"/masters/products/{p.id}")
    assert 'value="4500"' in form.text and 'value="10"' in form.text
    r = post(
        admin,
        f"/masters/products/{p.id}",
        {"code": "60001", "name": "黒酢ドリンク", "price": "4800", "tax_class": "reduced"},
    )
    assert r.status_code == 303
    p = products(database_url)["60001"]
    assert (p.price, p.subscribable) == (4800, False)  # an unticked box is "no"

    r = post(admin, f"/masters/products/{p.id}/active", {"active": "0"})
    assert r.status_code == 303
    assert "使用停止にしました" in admin.get(r.headers["location"]).text
    assert "黒酢ドリンク" not in admin.get("/masters/products").text
    retired = admin.get("/masters/products?status=retired").text
    assert "黒酢ドリンク" in retired and "使用再開" in retired
    assert products(database_url)["60001"].active is False
    post(admin, f"/masters/products/{p.id}/active", {"active": "1"})
    assert products(database_url)["60001"].active is True


def test_a_product_on_orders_is_retired_never_deleted(admin: Any, database_url: str) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    tonic = products(database_url)["10001"]

    async def order(s: Any) -> None:
        o = Order(number="1", customer_id=cid, received_on=dt.date(2025, 4, 21))
        o.lines = [
            OrderLine(
                product_id=tonic.id,
                product_code="10001",
                product_name="健康トニック",
                quantity=1,
                unit_price=6900,
                amount=6900,
            )
        ]
        s.add(o)

    db_run(database_url, order)
    # there is no delete for masters with 有効
    assert post(admin, f"/masters/products/{tonic.id}/delete", {}).status_code == 404
    assert post(admin, f"/masters/products/{tonic.id}/active", {"active": "0"}).status_code == 303
    assert products(database_url)["10001"].active is False

    async def lines(s: Any) -> list[int | None]:
        return [x.product_id for x in await s.scalars(select(OrderLine))]

    assert db_run(database_url, lines) == [tonic.id]  # the order still points at it
    # order entry refuses the retired product
    login(admin, "op")
    page = admin.get(f"/customers/{cid}/order")
    token = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert token
    r = admin.post(
        f"/customers/{cid}/order/form",
        data={"code": "10001", "qty": "1", "carrier": "yamato", "payment": "cod"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(admin)},
    )
    assert "販売を終了した商品です。" in r.text


def test_rows_without_active_flag_may_be_deleted(admin: Any, database_url: str) -> None:
    page = admin.get("/masters/companions")
    assert "取扱説明書" in page.text and "削除" in page.text

    async def companion_id(s: Any) -> int:
        from app.masters.models import Companion

        return int(await s.scalar(select(Companion.id)) or 0)

    cid = db_run(database_url, companion_id)
    r = post(admin, f"/masters/companions/{cid}/delete", {})
    assert r.status_code == 303
    assert db_run(database_url, companion_id) == 0


def test_campaign_rules_are_checked_per_kind(admin: Any, database_url: str) -> None:
    r = post(
        admin,
        "/masters/campaigns/new",
        {"code": "C1", "name": "同梱キャンペーン", "kind": "present", "present_quantity": "1"},
    )
    assert r.status_code == 422
    assert "対象商品コードを入力してください" in error_of(r.text, "product_id")
    assert error_of(r.text, "present_product_id") == "プレゼント商品コードを入力してください。"
    r = post(
        admin,
        "/masters/campaigns/new",
        {"code": "C2", "name": "ゴールド割引", "kind": "rank_discount", "rank_id": "gold"},
    )
    assert error_of(r.text, "discount_amount") == "値引額（円）か値引率（%）を入力してください。"
    r = post(
        admin,
        "/masters/campaigns/new",
        {
            "code": "C3",
            "name": "同梱キャンペーン",
            "kind": "present",
            "product_id": "20002",
            "present_product_id": "90002",
            "present_quantity": "1",
            "starts_on": "2025/04/01",
            "ends_on": "2025/04/30",
        },
    )
    assert r.status_code == 303

    async def campaigns(s: Any) -> list[str]:
        return [c.code for c in await s.scalars(select(Campaign))]

    assert db_run(database_url, campaigns) == ["C3"]


def test_staff_master_creates_a_login_and_retiring_blocks_it(admin: Any, database_url: str) -> None:
    # Back office registers the log-in; only an administrator sets its password
    page = admin.get("/masters/staff/new")
    assert "パスワードの設定・再設定は管理者だけができます。" in page.text
    assert 'name="password"' not in page.text
    r = post(
        admin,
        "/masters/staff/new",
        {"login": "tanaka", "name": "田中 一郎", "role": "operator", "password": "secret1234"},
    )
    assert r.status_code == 422
    assert error_of(r.text, "password") == "パスワードの設定・再設定は管理者だけができます。"
    r = post(
        admin,
        "/masters/staff/new",
        {
            "login": "tanaka",
            "name": "田中 一郎",
            "role": "operator",
            "extension": "203",
            "line": "team-b",
        },
    )
    assert r.status_code == 303
    assert login(admin, "tanaka", "").status_code == 400
    login(admin, "boss")
    r = post(
        admin,
        "/masters/staff/new",
        {"login": "sato", "name": "佐藤 二郎", "role": "operator", "extension": "204"},
    )
    assert r.status_code == 422
    assert error_of(r.text, "password") == "パスワードを入力してください（8文字以上）。"
    tanaka = _staff_row(database_url, "tanaka")
    r = post(
        admin,
        f"/masters/staff/{tanaka.id}",
        {
            "login": "tanaka",
            "name": "田中 一郎",
            "role": "operator",
            "extension": "203",
            "line": "team-b",
            "active": "1",
            "password": "secret1234",
        },
    )
    assert r.status_code == 303
    first = login(admin, "tanaka", "secret1234")
    assert first.status_code == 303 and first.headers["location"] == "/password"
    login(admin, "office")
    listed = admin.get("/masters/staff?q=tanaka")
    assert "team-b" in listed.text and "203" in listed.text

    async def staff_id(s: Any) -> int:
        from app.auth.models import Staff

        return int(await s.scalar(select(Staff.id).where(Staff.login == "tanaka")) or 0)

    sid = db_run(database_url, staff_id)
    post(admin, f"/masters/staff/{sid}/active", {"active": "0"})
    refused = login(admin, "tanaka", "secret1234")
    assert refused.status_code != 303
    assert "ログインIDまたはパスワードが違います" in refused.text


def test_rank_master_recalculates_on_demand(admin: Any, database_url: str) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    r = post(admin, "/masters/ranks/recalculate", {})
    assert r.status_code == 303
    page = admin.get(r.headers["location"])
    assert "ランクを再計算しました（1人のランクが変わりました）。" in page.text


def test_a_campaign_out_of_its_period_is_marked_in_the_list(admin: Any) -> None:
    r = post(
        admin,
        "/masters/campaigns/new",
        {
            "code": "OLD",
            "name": "去年の送料無料",
            "kind": "free_shipping",
            "starts_on": "2020/04/01",
            "ends_on": "2020/04/30",
        },
    )
    assert r.status_code == 303
    text = text_of(admin.get("/masters/campaigns").text)
    assert "去年の送料無料 期間限定送料無料 2020/04/01 2020/04/30" in text
    assert "有効 期間外" in text


def _staff_row(url: str, login_id: str) -> Any:
    async def fn(s: Any) -> Any:
        from app.auth.models import Staff

        return await s.scalar(select(Staff).where(Staff.login == login_id))

    return db_run(url, fn)


def test_only_an_admin_makes_or_changes_an_admin(admin: Any, database_url: str) -> None:
    """Back office keeps the staff master but cannot give itself (or anyone) the admin role,
    nor change or retire an administrator's log-in."""
    office = _staff_row(database_url, "office")
    boss = _staff_row(database_url, "boss")
    made = post(
        admin,
        "/masters/staff/new",
        {"login": "evil", "name": "悪 一郎", "role": "admin", "password": "secret1234"},
    )
    assert made.status_code == 422
    assert "管理者だけが" in error_of(made.text, "role")
    promoted = post(
        admin,
        f"/masters/staff/{office.id}",
        {"login": "office", "name": office.name, "role": "admin", "active": "1"},
    )
    assert promoted.status_code == 422 and "管理者だけが" in error_of(promoted.text, "role")
    reset = post(
        admin,
        f"/masters/staff/{boss.id}",
        {"login": "boss", "name": boss.name, "role": "admin", "active": "1", "password": "x" * 10},
    )
    assert reset.status_code == 422
    retired = post(admin, f"/masters/staff/{boss.id}/active", {"active": "0"})
    assert retired.status_code == 409 and "管理者だけが" in retired.text
    csv_text = "ログインID,氏名,役割,パスワード\nevil2,悪 二郎,admin,secret1234\n"
    preview = upload(admin, "staff", csv_text.encode("cp932"), encoding="cp932")
    assert preview.status_code == 422 and "管理者だけが" in preview.text
    assert _staff_row(database_url, "office").role == "backoffice"
    # Nobody retires their own log-in, from the list or by CSV.
    own = upload(admin, "staff", "ログインID,有効\noffice,0\n".encode(), encoding="utf-8")
    assert own.status_code == 422 and "自分のアカウントは使用停止にできません" in own.text
    own_row = post(admin, f"/masters/staff/{office.id}/active", {"active": "0"})
    assert own_row.status_code == 409 and "自分のアカウントは使用停止にできません" in own_row.text
    assert _staff_row(database_url, "office").active
    assert _staff_row(database_url, "evil") is None and _staff_row(database_url, "evil2") is None
    # The one administrator cannot take the role from themselves, nor retire themselves.
    login(admin, "boss")
    demoted = post(
        admin,
        f"/masters/staff/{boss.id}",
        {"login": "boss", "name": boss.name, "role": "backoffice", "active": "1"},
    )
    assert demoted.status_code == 422 and "有効な管理者が他にいない" in error_of(
        demoted.text, "role"
    )
    # An administrator may make another one.
    ok = post(
        admin,
        "/masters/staff/new",
        {"login": "boss2", "name": "管理 次郎", "role": "admin", "password": "secret1234"},
    )
    assert ok.status_code == 303


def test_a_retired_or_demoted_login_loses_access_at_once(admin: Any, database_url: str) -> None:
    """An open session follows the staff master even when it is changed behind the app's
    back: a role changed applies at the next request, a retired log-in is logged out (read
    with the session's row on every request)."""
    from app.auth.models import Staff

    assert login(admin, "op").status_code == 303
    assert admin.get("/board").status_code == 403

    def change(**values: Any) -> None:
        async def fn(s: Any) -> None:
            await s.execute(update(Staff).where(Staff.login == "op").values(**values))

        db_run(database_url, fn)

    change(role="supervisor")
    assert admin.get("/board").status_code == 200
    change(active=False)
    gone = admin.get("/customers", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


def _staff_form(row: Any, **extra: str) -> dict[str, str]:
    return {
        "login": row.login,
        "name": row.name,
        "role": row.role,
        "extension": row.extension,
        "allowed_extensions": row.allowed_extensions,
        "line": row.line,
        "active": "1" if row.active else "",
        **extra,
    }


def test_only_an_admin_changes_extensions_and_roles(admin: Any, database_url: str) -> None:
    """Back office keeps the staff master but cannot widen which extensions' pops a log-in
    receives (its own included), nor change a role: read-only on the form, refused beside the
    field when posted anyway, a bad row in a CSV; an administrator may."""
    office = _staff_row(database_url, "office")
    op = _staff_row(database_url, "op")
    page = admin.get(f"/masters/staff/{op.id}")
    for name in ("role", "extension", "allowed_extensions"):
        assert re.search(rf'<input type="hidden" name="{name}"', page.text)
        assert f'<p class="mf-readonly" id="f-{name}">' in page.text
    assert '<input id="f-name" name="name"' in page.text
    message = "内線と使える内線は管理者だけが変更できます。"
    for row in (office, op):  # its own row too
        r = post(admin, f"/masters/staff/{row.id}", _staff_form(row, allowed_extensions="*"))
        assert r.status_code == 422 and error_of(r.text, "allowed_extensions") == message
        r = post(admin, f"/masters/staff/{row.id}", _staff_form(row, extension="299"))
        assert r.status_code == 422 and error_of(r.text, "extension") == message
    r = post(admin, f"/masters/staff/{op.id}", _staff_form(op, role="supervisor"))
    assert r.status_code == 422
    assert error_of(r.text, "role") == "役割は管理者だけが変更できます。"
    r = post(admin, f"/masters/staff/{office.id}", _staff_form(office, role="supervisor"))
    assert r.status_code == 422
    # the rest of the row stays back office's to keep
    r = post(admin, f"/masters/staff/{op.id}", _staff_form(op, name="古賀 まさみ"))
    assert r.status_code == 303
    # a new log-in: its role and registered extension, but no 使える内線
    new = {"login": "new1", "name": "新人 一郎", "role": "operator", "extension": "205"}
    page = admin.get("/masters/staff/new")
    assert '<p class="mf-readonly" id="f-allowed_extensions">' in page.text
    assert '<input id="f-extension" name="extension"' in page.text
    r = post(admin, "/masters/staff/new", {**new, "allowed_extensions": "*"})
    assert r.status_code == 422
    assert error_of(r.text, "allowed_extensions") == "使える内線は管理者だけが設定できます。"
    assert post(admin, "/masters/staff/new", new).status_code == 303
    # CSV: a change is a bad row; the same values (an export read back) pass
    for body in (
        "ログインID,使える内線\noffice,*\n",
        "ログインID,内線\nop,299\n",
        "ログインID,役割\nop,supervisor\n",
        "ログインID,氏名,使える内線\nnew2,新人 二郎,201\n",
    ):
        r = upload(admin, "staff", body.encode("utf-8"), encoding="utf-8")
        assert r.status_code == 422 and "管理者だけが" in text_of(r.text), body
    r = upload(
        admin,
        "staff",
        "ログインID,内線,使える内線,役割\nop,,,operator\n".encode(),
        encoding="utf-8",
    )
    assert r.status_code == 200, text_of(r.text)
    for login_id in ("office", "op"):
        row = _staff_row(database_url, login_id)
        assert (row.extension, row.allowed_extensions) == ("", "")
    assert _staff_row(database_url, "op").role == "operator"
    assert _staff_row(database_url, "new1").extension == "205"
    # an administrator changes them, on the form and by CSV
    login(admin, "boss")
    page = admin.get(f"/masters/staff/{op.id}")
    assert '<input id="f-allowed_extensions" name="allowed_extensions"' in page.text
    r = post(
        admin,
        f"/masters/staff/{op.id}",
        _staff_form(_staff_row(database_url, "op"), allowed_extensions="*", extension="201"),
    )
    assert r.status_code == 303
    r = upload(admin, "staff", 'ログインID,使える内線,役割\noffice,"202,203",supervisor\n'.encode())
    assert r.status_code == 200, text_of(r.text)
    assert post(admin, "/masters/staff/import/apply", apply_form(r.text)).status_code == 303
    op_row, office_row = _staff_row(database_url, "op"), _staff_row(database_url, "office")
    assert (op_row.extension, op_row.allowed_extensions) == ("201", "*")
    assert (office_row.allowed_extensions, office_row.role) == ("202,203", "supervisor")
