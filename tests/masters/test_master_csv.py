"""CSV export and import of masters in UTF-8 and cp932: a round trip, every bad row reported
with its row number and column before anything is written, then one transaction."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.masters.models import Ad, Product
from tests.conftest import csrf_of, login
from tests.factories import add_masters
from tests.masters.helpers import db_run, post, text_of


@pytest.fixture
def office(client: Any, database_url: str, make_staff: Callable[..., int]) -> Any:
    add_masters(database_url)
    make_staff("office", role="backoffice", name="事務 花子")
    login(client, "office")
    return client


def rows_of(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding))))


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def upload(client: Any, key: str, body: bytes, encoding: str = "auto") -> Any:
    # the token in the header: the CSRF middleware leaves a multipart body unread then
    return client.post(
        f"/masters/{key}/import",
        data={"encoding": encoding},
        files={"file": (f"{key}.csv", body, "text/csv")},
        headers={"X-CSRF-Token": csrf_of(client)},
    )


def apply_form(html: str) -> dict[str, str]:
    text = re.search(r'<textarea name="text" hidden>(.*?)</textarea>', html, re.S)
    encoding = re.search(r'name="encoding" value="([^"]+)"', html)
    assert text and encoding, "no 取り込む form"
    import html as h

    return {"text": h.unescape(text.group(1)), "encoding": encoding.group(1)}


def products(url: str) -> dict[str, Product]:
    async def fn(s: Any) -> dict[str, Product]:
        return {p.code: p for p in await s.scalars(select(Product))}

    return dict(db_run(url, fn))


def test_products_round_trip_in_utf8(office: Any, database_url: str) -> None:
    r = office.get("/masters/products/export?encoding=utf-8")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = rows_of(r.content, "utf-8-sig")
    header = rows[0]
    assert header[:5] == ["商品コード", "商品名", "商品名かな", "商品分類コード", "価格（税抜）"]
    assert "健康トニック" in {row[1] for row in rows[1:]}
    # change a price, add a product; leave the rest as exported
    price = header.index("価格（税抜）")
    for row in rows[1:]:
        if row[0] == "10001":
            row[price] = "7200"
    new = ["" for _ in header]
    new[0], new[1], new[3], new[price] = "60001", "黒酢ドリンク", "10", "4500"
    new[header.index("税区分")] = "軽減税率 8%"
    rows.append(new)
    body = ("\ufeff" + to_csv(rows)).encode("utf-8")
    preview = upload(office, "products", body)
    assert preview.status_code == 200, text_of(preview.text)
    assert f"新規 1件・更新 {len(rows) - 2}件" in text_of(preview.text)
    assert products(database_url)["10001"].price == 6900  # nothing written yet
    r = post(office, "/masters/products/import/apply", apply_form(preview.text))
    assert r.status_code == 303
    assert "CSV を取り込みました（新規 1件・更新" in office.get(r.headers["location"]).text
    p = products(database_url)
    assert p["10001"].price == 7200
    assert (p["60001"].name, p["60001"].tax_class, p["60001"].active) == (
        "黒酢ドリンク",
        "reduced",
        True,
    )
    # exporting again gives what was imported
    again = rows_of(office.get("/masters/products/export?encoding=utf-8").content, "utf-8-sig")
    assert {tuple(x) for x in again[1:]} >= {tuple(x) for x in rows[1:] if x[0] != "60001"}


def test_ads_round_trip_in_cp932(office: Any, database_url: str) -> None:
    r = office.get("/masters/ads/export?encoding=cp932")
    assert r.status_code == 200 and "shift_jis" in r.headers["content-type"]
    rows = rows_of(r.content, "cp932")
    assert rows[1][:2] == ["801", "○○新聞"]
    rows[1][1] = "○○新聞（朝刊）"
    rows.append(["809", "△△通販カタログ", "カタログ", "2025/04/01", "", "90000", "1"])
    preview = upload(office, "ads", to_csv(rows).encode("cp932"), encoding="cp932")
    assert preview.status_code == 200, text_of(preview.text)
    r = post(office, "/masters/ads/import/apply", apply_form(preview.text))
    assert r.status_code == 303

    async def ads(s: Any) -> dict[str, Ad]:
        return {a.code: a for a in await s.scalars(select(Ad))}

    found = db_run(database_url, ads)
    assert found["801"].name == "○○新聞（朝刊）"
    assert (found["809"].name, found["809"].cost, found["809"].ends_on) == (
        "△△通販カタログ",
        90000,
        None,
    )
    # a cp932 file read as automatic also works
    auto = upload(office, "ads", to_csv(rows).encode("cp932"))
    assert auto.status_code == 200 and "更新 9件" in text_of(auto.text)


def test_every_bad_row_is_listed_and_nothing_is_written(office: Any, database_url: str) -> None:
    body = to_csv(
        [
            ["商品コード", "商品名", "商品分類コード", "価格（税抜）", "税区分", "有効"],
            ["10001", "健康トニック", "10", "7000", "reduced", "1"],  # fine
            ["60001", "", "10", "4500", "standard", "1"],  # no name
            ["60002", "青汁", "77", "abc", "standard", "1"],  # category, price
            ["60003", "黒酢", "10", "3000", "税込", "はい"],  # tax class
            ["10001", "健康トニック", "10", "7100", "reduced", "1"],  # twice
            ["60004", "緑茶", "50", "1200"],  # short row
        ]
    ).encode("utf-8")
    r = upload(office, "products", body)
    assert r.status_code == 422
    cells = re.findall(
        r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>', r.text
    )
    assert cells == [
        ("3", "商品名", "商品名を入力してください。"),
        ("4", "商品分類コード", "商品分類コード「77」は登録されていません。"),
        ("4", "価格（税抜）", "価格（税抜）は半角の整数で入力してください。"),
        ("5", "税区分", "税区分は一覧から選んでください。"),
        ("6", "商品コード", "2行目と同じです（1つのファイルに同じ行は1回まで）。"),
        ("7", "", "列の数が見出しと違います（4列／6列）。"),
    ]
    assert "まだ何も取り込んでいません" in r.text and "import-apply" not in r.text
    # posting the text to 取り込む anyway writes nothing either
    r = post(office, "/masters/products/import/apply", {"text": body.decode(), "encoding": "utf-8"})
    assert r.status_code == 422
    p = products(database_url)
    assert p["10001"].price == 6900 and "60001" not in p and "60003" not in p


def test_file_level_problems(office: Any) -> None:
    r = upload(office, "products", "商品コード,色\r\n1,赤\r\n".encode())
    assert r.status_code == 422
    assert "色" in text_of(r.text) and "不明な列です。" in r.text
    r = upload(office, "products", "商品名\r\nお茶\r\n".encode())
    assert "この列は必須です。" in r.text
    r = upload(office, "products", "商品コード,商品名\r\n1,お茶\r\n".encode("cp932"), "utf-8")
    assert r.status_code == 422
    assert "ファイルをUTF-8として読めません。" in text_of(r.text)
    r = upload(office, "products", b"")
    assert r.status_code == 422


def test_staff_and_composite_keys_import(
    office: Any, database_url: str, make_staff: Callable[..., int]
) -> None:
    body = to_csv(
        [
            ["ログインID", "氏名", "役割", "内線", "回線・チーム", "パスワード", "有効"],
            ["tanaka", "田中 一郎", "オペレータ", "203", "team-b", "secret1234", "1"],
            ["suzuki", "鈴木 次郎", "operator", "204", "", "", "1"],  # new without password
        ]
    ).encode("utf-8")
    # Back office keeps the staff master but sets no password
    r = upload(office, "staff", body)
    assert r.status_code == 422
    assert "パスワードの設定・再設定は管理者だけができます。" in r.text
    r = upload(office, "staff", body.replace(b"secret1234", b""))
    assert r.status_code == 200, text_of(r.text)
    assert post(office, "/masters/staff/import/apply", apply_form(r.text)).status_code == 303
    assert login(office, "suzuki", "").status_code == 400  # no password yet: no log-in
    assert "ログインIDまたはパスワードが違います" in login(office, "suzuki", "!").text
    # An administrator's import sets it; the owner changes it at the first log-in
    make_staff("boss", role="admin")
    login(office, "boss")
    r = upload(office, "staff", "ログインID,パスワード\nsuzuki,pass5678\n".encode())
    assert r.status_code == 200, text_of(r.text)
    assert post(office, "/masters/staff/import/apply", apply_form(r.text)).status_code == 303
    first = login(office, "suzuki", "pass5678")
    assert first.status_code == 303 and first.headers["location"] == "/password"
    login(office, "office")
    # 送料: carrier + prefecture identify the row
    r = upload(
        office,
        "shipping",
        to_csv(
            [["配送会社コード", "都道府県", "送料（税抜）"], ["yamato", "佐賀県", "700"]]
        ).encode("utf-8"),
    )
    assert "新規 0件・更新 1件" in text_of(r.text)
