"""CSV import and export at the limits: an over-long cell and a control character are bad rows
of the preview (the rest of the file still checked, nothing written), a large file is applied
in one go, and every export neutralises all six formula starts (= + - @ TAB CR)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from app.csvsafe import FORMULA_START, safe_cell, unsafe_cell
from app.customers.models import Customer
from app.masters.models import Ad, Product
from tests.conftest import csrf_of, login
from tests.factories import add_masters
from tests.masters.helpers import db_run, text_of
from tests.masters.test_master_csv import apply_form, rows_of, to_csv, upload

HEADER = ["商品コード", "商品名", "商品分類コード", "価格（税抜）", "税区分", "有効"]


@pytest.fixture
def office(client: Any, database_url: str, make_staff: Callable[..., int]) -> Any:
    add_masters(database_url)
    make_staff("office", role="backoffice", name="事務 花子")
    login(client, "office")
    return client


def product_count(url: str) -> int:
    async def fn(s: Any) -> int:
        return int(await s.scalar(select(func.count()).select_from(Product)) or 0)

    return int(db_run(url, fn))


def error_rows(html: str) -> list[tuple[str, str, str]]:
    import re

    return re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>', html)


def test_a_long_cell_and_a_nul_cell_are_bad_rows_and_nothing_is_written(
    office: Any, database_url: str
) -> None:
    before = product_count(database_url)
    body = to_csv(
        [
            HEADER,
            ["60001", "青汁" * 70_000, "10", "4500", "standard", "1"],  # 140,000 characters
            ["60002", "黒酢\x00ドリンク", "10", "3000", "standard", "1"],  # a NUL
            ["60003", "緑茶\x1bティー", "10", "3000", "standard", "1"],  # an escape
            ["60004", "ほうじ茶", "10", "1200", "standard", "1"],  # fine
            ["60005", "麦茶", "77", "1200", "standard", "1"],  # checked as usual
        ]
    ).encode("utf-8")
    r = upload(office, "products", body)
    assert r.status_code == 422, text_of(r.text)[:300]
    assert error_rows(r.text) == [
        ("2", "商品名", "長すぎます（65,536文字まで）。"),
        ("3", "商品名", "使えない文字（制御文字）が含まれています。"),
        ("4", "商品名", "使えない文字（制御文字）が含まれています。"),
        ("6", "商品分類コード", "商品分類コード「77」は登録されていません。"),
    ]
    assert "import-apply" not in r.text
    # 取り込む posted anyway: the NUL is refused at the edge, the long cell by the preview.
    r = office.post(
        "/masters/products/import/apply",
        data={"text": body.decode(), "encoding": "utf-8", "csrf_token": csrf_of(office)},
    )
    assert r.status_code == 400 and "制御文字" in r.text
    long_only = to_csv([HEADER, ["60001", "青" * 140_000, "10", "4500", "standard", "1"]])
    r = office.post(
        "/masters/products/import/apply",
        files={"text": (None, long_only.encode()), "encoding": (None, b"utf-8")},
        headers={"X-CSRF-Token": csrf_of(office)},
    )
    assert r.status_code == 422 and "長すぎます" in r.text
    assert product_count(database_url) == before


def test_a_cp932_file_ending_in_ctrl_z_imports(office: Any, database_url: str) -> None:
    body = to_csv([HEADER, ["60011", "ほうじ茶", "10", "1200", "standard", "1"]]).encode("cp932")
    r = upload(office, "products", body + b"\x1a", encoding="cp932")
    assert r.status_code == 200, text_of(r.text)[:300]
    assert "新規 1件" in text_of(r.text)


def test_a_large_file_is_previewed_and_applied_as_the_browser_posts_it(
    office: Any, database_url: str
) -> None:
    """取り込む posts the previewed text back as multipart: far over 64 KiB and over
    Starlette's own 1 MB a field, it is applied in one go."""
    rows = [["広告コード", "広告名", "媒体", "開始日", "終了日", "費用（円）", "有効"]]
    for i in range(12_000):
        rows.append(
            [
                f"9{i:05d}",
                f"テスト広告{i}号（夕刊・全国版・健康特集）",
                "新聞",
                "2025/04/01",
                "",
                "1000",
                "1",
            ]
        )
    body = to_csv(rows).encode("utf-8")
    assert len(body) > 1024 * 1024
    preview = upload(office, "ads", body)
    assert preview.status_code == 200, text_of(preview.text)[:300]
    form = apply_form(preview.text)
    r = office.post(
        "/masters/ads/import/apply",
        files={k: (None, v.encode()) for k, v in form.items()},
        headers={"X-CSRF-Token": csrf_of(office)},
        follow_redirects=False,
    )
    assert r.status_code == 303, text_of(r.text)[:300]

    async def fn(s: Any) -> int:
        return int(await s.scalar(select(func.count()).select_from(Ad).where(Ad.code >= "9")))

    assert db_run(database_url, fn) == 12_000


def test_safe_cell_covers_all_six_formula_starts_and_round_trips() -> None:
    assert FORMULA_START == ("=", "+", "-", "@", "\t", "\r")
    for start in FORMULA_START:
        value = f'{start}HYPERLINK("http://evil")'
        assert safe_cell(value) == "'" + value
        assert unsafe_cell(safe_cell(value)) == value
    assert safe_cell("佐賀 太郎") == "佐賀 太郎"
    assert unsafe_cell("'ok") == "'ok"


def test_master_export_neutralises_a_leading_tab_or_cr_and_imports_back_unquoted(
    office: Any, database_url: str
) -> None:
    async def rename(s: Any) -> None:
        p = (await s.scalars(select(Product).where(Product.code == "10001"))).one()
        p.name = "\t=1+1"
        q = (await s.scalars(select(Product).where(Product.code == "10002"))).one()
        q.name = "\r@SUM(A1)"

    db_run(database_url, rename)
    r = office.get("/masters/products/export?encoding=utf-8")
    by_code = {row[0]: row for row in rows_of(r.content, "utf-8-sig")[1:]}
    assert by_code["10001"][1] == "'\t=1+1"
    assert by_code["10002"][1] == "'\r@SUM(A1)"
    # the exported file imports back
    preview = upload(office, "products", r.content)
    assert preview.status_code == 200, text_of(preview.text)[:300]
    assert (
        office.post(
            "/masters/products/import/apply",
            data={**apply_form(preview.text), "csrf_token": csrf_of(office)},
            follow_redirects=False,
        ).status_code
        == 303
    )

    async def names(s: Any) -> dict[str, str]:
        return {p.code: p.name for p in await s.scalars(select(Product))}

    found = db_run(database_url, names)
    # (leading white space is trimmed as when the name is typed into the form)
    assert found["10001"] == "=1+1" and found["10002"] == "@SUM(A1)"
    again = {row[0]: row for row in rows_of(office.get(r.url).content, "utf-8-sig")[1:]}
    assert again["10001"][1] == "'=1+1" and again["10002"][1] == "'@SUM(A1)"


def test_dormant_csv_neutralises_a_leading_tab_or_cr(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    async def add(s: Any) -> None:
        for code, name in (("C1", "\t=HYPERLINK(1)"), ("C2", "\r+1"), ("C3", "-2"), ("C4", "@x")):
            s.add(
                Customer(
                    code=code, name=name, kana="", prefecture="佐賀県", city="佐賀市",
                    street="=1", flags={}, created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                )
            )  # fmt: skip

    db_run(database_url, add)
    make_staff("sv", role="supervisor")
    login(client, "sv")
    r = client.get("/dormant.csv", params={"days": "1"})
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    names = {row[1]: row[0] for row in rows[1:]}
    assert names == {
        "C1": "'\t=HYPERLINK(1)",
        "C2": "'\r+1",
        "C3": "'-2",
        "C4": "'@x",
    }
