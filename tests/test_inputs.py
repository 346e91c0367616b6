"""The input guard (app/inputs.py): oversized forms, too many fields, control characters and
invalid UTF-8 get a Japanese 4xx page before anything reads them — never a 500, nothing
written — and what passes is parsed once for the CSRF check and the route."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.auth.models import Staff
from app.config import Settings
from app.customers.models import Customer
from app.db import make_engine, make_sessionmaker, transaction
from app.orders.models import Order
from tests.conftest import csrf_of, login, run_async
from tests.factories import add_customer, add_masters

HX = {"HX-Request": "true"}
CONTROL_MSG = "入力に使えない文字（制御文字）が含まれています。"


def count(url: str, model: Any) -> int:
    async def go() -> int:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                return int(await s.scalar(select(func.count()).select_from(model)) or 0)
        finally:
            await engine.dispose()

    return int(run_async(go()))


def new_customer_form(token: str, **over: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "name": "佐賀 次郎",
        "kana": "サガ ジロウ",
        "phone": "0952-32-6699",
        "phone_kind": "home",
        "postcode": "840-0054",
        "prefecture": "佐賀県",
        "city": "佐賀市",
        "street": "水ケ江1-1",
        "building": "",
        "email": "",
        "confirm": "1",
        **over,
    }


def assert_refused(r: Any, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text[:500]
    assert f'data-status="{status}"' in r.text and "error-page" in r.text
    assert "何も保存していません" in r.text
    if text:
        assert text in r.text
    assert "Internal Server Error" not in r.text


@pytest.fixture
def operator(client: Any, make_staff: Callable[..., int], database_url: str) -> Iterator[Any]:
    add_masters(database_url)
    make_staff("op", extension="201")
    assert login(client, "op").status_code == 303
    yield client


# --- size limits ------------------------------------------------------------------------------


def test_a_one_megabyte_field_is_refused_with_a_japanese_413_and_nothing_is_written(
    operator: Any, database_url: str
) -> None:
    client = operator
    before = count(database_url, Customer)
    form = new_customer_form(csrf_of(client), name="あ" * (1024 * 1024 // 3 + 1))
    r = client.post("/customers/new", data=form, follow_redirects=False)
    assert_refused(r, 413, "入力が長すぎます（1項目 65,536文字まで）。")
    assert count(database_url, Customer) == before
    # The same form with a sane name is saved: the guard let it through, parsed once.
    r = client.post("/customers/new", data=new_customer_form(csrf_of(client)))
    assert r.status_code == 200 and count(database_url, Customer) == before + 1


def test_anonymous_login_with_a_huge_field_or_too_many_fields_is_a_413_page(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    make_staff("op")
    token = csrf_of(client)
    r = client.post("/login", data={"csrf_token": token, "login": "x" * 1_100_000})
    assert_refused(r, 413, "入力が長すぎます")
    many = [("csrf_token", token), ("login", "op"), ("password", "password123")]
    many += [(f"f{i}", "1") for i in range(5001)]
    r = client.post(
        "/login",
        content="&".join(f"{k}={v}" for k, v in many),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_refused(r, 413, "送信された項目が多すぎます（5,000項目まで）。")
    # 1,500 fields (more than Starlette's own 1,000) pass: the log-in itself works.
    ok = many[:1500]
    r = client.post(
        "/login",
        content="&".join(f"{k}={v}" for k, v in ok),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_a_body_over_the_limit_is_refused_from_its_content_length(
    settings: Settings, tmp_path: Path, make_staff: Callable[..., int], database_url: str
) -> None:
    from starlette.testclient import TestClient

    from app.main import create_app

    settings.inputs.max_body_bytes = 2048
    make_staff("op")
    app = create_app(settings, var_dir=tmp_path / "var")
    with TestClient(app) as client:
        login(client, "op")
        before = count(database_url, Customer)
        form = new_customer_form(csrf_of(client), street="x" * 3000)
        r = client.post("/customers/new", data=form)
        assert_refused(r, 413, "送信された内容が大きすぎます（2 KBまで）。")
        # Chunked (no Content-Length): refused once the bytes read pass the limit.
        chunks = iter([b"csrf_token=x&name=", b"a" * 1500, b"b" * 1500, b"c" * 1500])
        r = client.post(
            "/customers/new",
            content=chunks,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert_refused(r, 413, "2 KBまで")
        assert count(database_url, Customer) == before


def test_an_order_of_250_lines_is_recomputed_not_refused(operator: Any, database_url: str) -> None:
    """An order line posts 4 fields: 250 lines are over Starlette's 1,000 but within ours."""
    client = operator
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    fields = {
        "csrf_token": [csrf_of(client)],
        "code": ["1001"] * 250,
        "qty": ["1"] * 250,
        "price": [""] * 250,
        "base": [""] * 250,
    }
    r = client.post(f"/customers/{taro}/order/form", data=fields, headers=HX)
    assert r.status_code == 200, r.text[:300]
    assert len(re.findall(r'class="line-code" name="code"', r.text)) >= 250
    assert count(database_url, Order) == 0


# --- control characters and invalid UTF-8 -----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/customers?q=%00",
        "/customers?q=abc%01",
        "/customers?q=%7F",
        "/customers?q=%FF%FE",
        "/products/suggest?q=%00",
        "/masters/products?q=%00",
        "/customers/%00",
        "/customers/%C0%80",
    ],
)
def test_a_query_or_path_with_a_control_character_or_bad_utf8_is_a_400(
    operator: Any, url: str
) -> None:
    r = operator.get(url)
    assert_refused(r, 400)
    assert "入力に使えない文字" in r.text


def test_faq_search_with_a_nul_is_a_400_fragment_in_the_toasts(
    operator: Any, database_url: str
) -> None:
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    r = operator.get(f"/customers/{taro}/responses/faqs?faq_q=%00", headers=HX)
    assert r.status_code == 400
    assert r.headers["HX-Retarget"] == "#toasts" and r.headers["HX-Reswap"] == "beforeend"
    assert CONTROL_MSG in r.text and 'role="alert"' in r.text
    # Tabs and line breaks are ordinary input.
    r = operator.get(f"/customers/{taro}/responses/faqs?faq_q=%E9%85%B5%E7%B4%A0%09%0A")
    assert r.status_code == 200


def test_forms_with_a_nul_write_nothing(operator: Any, database_url: str) -> None:
    client = operator
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    customers = count(database_url, Customer)
    r = client.post("/customers/new", data=new_customer_form(csrf_of(client), name="佐賀\x00次郎"))
    assert_refused(r, 400, CONTROL_MSG)
    assert "name" in r.text  # the field is named
    r = client.post(
        f"/customers/{taro}/order/confirm",
        data={"csrf_token": csrf_of(client), "code": "10\x0001", "qty": "1"},
    )
    assert_refused(r, 400, CONTROL_MSG)
    r = client.post(
        f"/customers/{taro}/order",
        data={"csrf_token": csrf_of(client), "code": "1001", "qty": "1", "note": "\x1b[31m"},
        headers=HX,
    )
    assert r.status_code == 400 and CONTROL_MSG in r.text
    assert count(database_url, Customer) == customers
    assert count(database_url, Order) == 0
    # Invalid UTF-8 in a form value, percent-encoded or raw.
    for body in (b"name=%FF%FE&csrf_token=x", b"name=\xff\xfe&csrf_token=x"):
        r = client.post(
            "/customers/new",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert_refused(r, 400, "UTF-8")
    # A multipart text part is checked like any field (the file part is not).
    r = client.post(
        "/masters/products/import",
        data={"csrf_token": csrf_of(client), "encoding": "utf-8\x00"},
        files={"file": ("p.csv", b"a,b\x00\n", "text/csv")},
    )
    assert_refused(r, 400, CONTROL_MSG)


def test_login_with_a_nul_is_refused_not_a_500(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    make_staff("op")
    r = client.post(
        "/login",
        data={"csrf_token": csrf_of(client), "login": "op\x00", "password": "password123"},
    )
    assert_refused(r, 400, CONTROL_MSG)
    assert count(database_url, Staff) == 1
    r = client.post(
        "/login", data={"csrf_token": csrf_of(client), "login": "op", "password": "pass\x00"}
    )
    assert_refused(r, 400, CONTROL_MSG)
    assert login(client, "op").status_code == 303


def test_a_malformed_multipart_body_is_a_400(operator: Any) -> None:
    r = operator.post(
        "/masters/products/import",
        content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--xyz--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_refused(r, 400, "読み取れませんでした")
