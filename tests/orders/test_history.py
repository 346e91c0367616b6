"""購入履歴 (H4, 再注文 O2) and 受注一覧 (O5): what the operator sees in the monitor's tabs and on
the global 受注一覧 page, and the CSV download."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditLog
from app.calls.models import Call
from app.customers.models import Customer, ShipTo
from app.db import make_engine, make_sessionmaker, transaction
from app.masters.models import Ad, Carrier, Product
from app.orders.models import Order, OrderLine
from app.web import JST
from tests.conftest import login, run_async
from tests.factories import add_customer, add_masters

# --- reading the page ---------------------------------------------------------------------


@dataclass
class Row:
    cells: list[str]
    attrs: dict[str, str]
    group: dict[str, str]  # the attributes of its <tbody>
    links: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


@dataclass
class Table:
    head: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, Table] = {}
        self.table: Table | None = None
        self.group: dict[str, str] = {}
        self.in_head = False
        self.row: Row | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self.table = self.tables.setdefault(a.get("id", f"t{len(self.tables)}"), Table())
        elif tag == "thead":
            self.in_head = True
        elif tag == "tbody":
            self.group = a
        elif tag == "tr" and self.table is not None:
            self.row = Row([], a, self.group)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag == "a" and self.row is not None:
            self.row.links.append(a.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.table = None
        elif tag == "thead":
            self.in_head = False
        elif tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.cells.append(" ".join(" ".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None and self.table is not None:
            if self.in_head:
                self.table.head = self.row.cells
            else:
                self.table.rows.append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def tables(html: str) -> dict[str, Table]:
    """The page's tables by id: header cells and body rows (cells as the user reads them)."""
    p = _TableParser()
    p.feed(html)
    return p.tables


# --- building data --------------------------------------------------------------------------


def in_db(url: str, fn: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    """Run ``fn(session)`` in one committed transaction on the test database."""

    async def go() -> Any:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                return await fn(s)
        finally:
            await engine.dispose()

    return run_async(go())


@dataclass
class Masters:
    products: dict[str, Product]
    ads: dict[str, int]
    carriers: dict[str, int]


async def masters(s: AsyncSession) -> Masters:
    return Masters(
        products={p.code: p for p in (await s.scalars(select(Product))).all()},
        ads={code: id_ for code, id_ in await s.execute(select(Ad.code, Ad.id))},
        carriers={code: id_ for code, id_ in await s.execute(select(Carrier.code, Carrier.id))},
    )


_numbers = iter(range(1, 10**7))


def make_order(
    m: Masters,
    *,
    customer_id: int,
    received: dt.date,
    lines: list[tuple[str, int, int | None]],  # (product code, quantity, parent position)
    slip: str = "normal",
    carrier: str = "yamato",
    ad: str | None = "801",
    ship: dt.date | None = None,
    deliver: dt.date | None = None,
    payment_status: str = "paid",
    status: str = "shipped",
    category: str = "通常",
    allocation: str = "電話",
    total: int | None = None,
    **kw: Any,
) -> Order:
    """An order with its lines; a line with a parent position is a part (no price)."""
    order = Order(
        number=f"{received:%Y%m%d}-{next(_numbers):07d}",
        customer_id=customer_id,
        slip_type=slip,
        carrier_id=m.carriers[carrier],
        ad_id=m.ads[ad] if ad else None,
        category=category,
        allocation=allocation,
        received_on=received,
        ship_on=ship,
        deliver_on=deliver,
        payment_status=payment_status,
        status=status,
        **kw,
    )
    subtotal = 0
    for position, (code, qty, parent) in enumerate(lines):
        p = m.products[code]
        price = 0 if parent is not None else p.price
        subtotal += price * qty
        order.lines.append(
            OrderLine(
                position=position,
                product_id=p.id,
                product_code=p.code,
                product_name=p.name,
                quantity=qty,
                unit_price=price,
                amount=price * qty,
                tax_class=p.tax_class,
                parent_position=parent,
            )
        )
    order.subtotal = subtotal
    order.total = total if total is not None else subtotal + subtotal // 10
    return order


def today() -> dt.date:
    return dt.datetime.now(JST).date()


def ymd(d: dt.date) -> str:
    return d.strftime("%Y/%m/%d")


@pytest.fixture
def login_op(client: Any, make_staff: Callable[..., int]) -> Callable[[], None]:
    """Create operator "op" (古賀 雅美) and log the client in."""

    def go() -> None:
        make_staff("op", name="古賀 雅美")
        login(client, "op")

    return go


# --- 購入履歴 ------------------------------------------------------------------------------

PURCHASE_HEAD = [
    "伝票種別",
    "受注日",
    "出荷予定日",
    "お届け予定日",
    "発送先",
    "広告",
    "区分",
    "振分区分",
    "配送方法",
    "商品名",
    "個数",
    "金額",
    "入金",
    "状態",
    "受注番号",
    "操作",
]


def test_purchase_history_shows_every_line_newest_first_with_payment_and_reorder(
    client: Any, login_op: Callable[[], None], database_url: str
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    other = add_customer(database_url, "北田 君子", "キタダ キミコ", "0985-11-2222")

    async def build(s: AsyncSession) -> dict[str, Order]:
        m = await masters(s)
        gift = ShipTo(customer_id=cid, name="佐賀 花子", prefecture="東京都", city="新宿区")
        s.add(gift)
        await s.flush()
        orders = {
            "tape": make_order(
                m,
                customer_id=cid,
                received=dt.date(2015, 4, 1),
                ship=dt.date(2015, 4, 3),
                deliver=dt.date(2015, 4, 6),
                lines=[("20001", 1, None)],
                total=6380,
            ),
            "set": make_order(
                m,
                customer_id=cid,
                received=dt.date(2015, 3, 15),
                ship=dt.date(2015, 3, 16),
                deliver=dt.date(2015, 3, 18),
                carrier="sagawa",
                ad="802",
                allocation="FAX",
                payment_status="unpaid",
                status="confirmed",
                ship_to_id=gift.id,
                lines=[
                    ("30001", 1, None),
                    ("10001", 1, 0),
                    ("20001", 1, 0),
                    ("20002", 2, None),
                    ("99001", 2, 3),
                ],
            ),
            "returned": make_order(
                m,
                customer_id=cid,
                received=dt.date(2014, 12, 10),
                ship=dt.date(2014, 12, 10),
                deliver=dt.date(2014, 12, 12),
                slip="subscription",
                allocation="定期",
                payment_status="returned",
                status="returned",
                lines=[("10001", 1, None)],
            ),
            "cancelled": make_order(
                m,
                customer_id=cid,
                received=dt.date(2014, 11, 1),
                payment_status="unpaid",
                status="cancelled",
                ad=None,
                lines=[("20003", 1, None)],
            ),
            "someone_else": make_order(
                m, customer_id=other, received=dt.date(2015, 4, 2), lines=[("40001", 1, None)]
            ),
        }
        s.add_all(orders.values())
        await s.flush()
        return orders

    orders = in_db(database_url, build)
    login_op()
    r = client.get(f"/customers/{cid}/purchases")
    assert r.status_code == 200
    assert 'id="tab-purchases" role="tab" class="tab active"' in r.text
    t = tables(r.text)["purchases"]
    assert t.head[:15] == PURCHASE_HEAD[:15]
    rows = t.rows
    tape, s = orders["tape"], orders["set"]
    assert rows[0].cells == [
        "通常",
        "2015/04/01",
        "2015/04/03",
        "2015/04/06",
        "佐賀県",
        "○○新聞",
        "通常",
        "電話",
        "ヤマト",
        "健康テープ",
        "1",
        "5,800",
        "済",
        "出荷済",
        f"{tape.number} 合計 6,380円",
        "再注文",
    ]
    reorder = f"/customers/{cid}/order?reorder={tape.id}"
    assert rows[0].links == [reorder]
    assert f'href="{reorder}" hx-get="{reorder}" hx-target="#tab-body"' in r.text
    assert 'data-fkey="F1" data-target="#purchases a.reorder"' in r.text
    # The set order: its parts and the 同梱 line sit under their lines, without a price.
    assert rows[1].cells[:12] == [
        "通常",
        "2015/03/15",
        "2015/03/16",
        "2015/03/18",
        "東京都 佐賀 花子 様",
        "△△テレビ通販",
        "通常",
        "FAX",
        "佐川",
        "健康セット",
        "1",
        "12,800",
    ]
    assert rows[1].cells[12:14] == ["未", "受注済"]
    assert rows[1].links == [f"/customers/{cid}/order?reorder={s.id}"]
    assert [r.cells for r in rows[2:5]] == [
        ["└ セット内容 健康トニック", "1", ""],
        ["└ セット内容 健康テープ", "1", ""],
        ["健康サポートテープ", "2", "11,800"],
    ]
    assert rows[5].cells == ["└ 同梱 取扱説明書（サポートテープ）", "2", ""]
    assert {"part"} <= rows[2].classes and {"part"} <= rows[5].classes
    assert "part" not in rows[4].classes
    assert all(r.group["data-order-id"] == str(s.id) for r in rows[1:6])
    # Returned and cancelled orders are muted, 入金 返 / 未.
    assert rows[6].cells[0] == "定期" and rows[6].cells[12:14] == ["返", "返品"]
    assert rows[7].cells[5] == "" and rows[7].cells[12:14] == ["未", "キャンセル"]
    assert "void" in rows[6].group["class"] and "void" in rows[7].group["class"]
    assert "void" not in rows[0].group["class"]
    assert len(rows) == 8  # the other customer's order is not here
    assert "受注 全4件" in r.text


def test_purchase_history_pages_by_50_orders(
    client: Any, login_op: Callable[[], None], database_url: str
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    start = dt.date(2020, 1, 1)

    async def build(s: AsyncSession) -> None:
        m = await masters(s)
        s.add_all(
            make_order(
                m,
                customer_id=cid,
                received=start + dt.timedelta(days=i),
                lines=[("10001", 1, None), ("20001", 1, None)],
            )
            for i in range(120)
        )

    in_db(database_url, build)
    login_op()

    def page(n: int) -> tuple[str, list[Row]]:
        r = client.get(f"/customers/{cid}/purchases?page={n}")
        assert r.status_code == 200
        return r.text, tables(r.text)["purchases"].rows

    html, rows = page(1)
    assert len({r.group["data-order-id"] for r in rows}) == 50 and len(rows) == 100
    assert rows[0].cells[1] == ymd(start + dt.timedelta(days=119))
    assert "受注 全120件中 1〜50件" in html
    assert f'href="/customers/{cid}/purchases?page=2"' in html and 'rel="next"' in html
    html, rows = page(3)
    assert len({r.group["data-order-id"] for r in rows}) == 20
    assert rows[-2].cells[1] == ymd(start)
    assert "101〜120件" in html
    html, rows = page(4)
    assert [r.cells for r in rows] == [["購入履歴はありません。"]]
    assert "受注 全120件" in html


def test_purchase_tab_as_htmx_fragment_and_missing_customer(
    client: Any, login_op: Callable[[], None], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    login_op()
    r = client.get(f"/customers/{cid}/purchases", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert 'id="purchases"' in r.text and 'hx-swap-oob="true"' in r.text
    assert "購入履歴はありません。" in r.text
    assert client.get("/customers/999999/purchases").status_code == 404


# --- 受注一覧 ------------------------------------------------------------------------------

LIST_HEAD = [
    "伝票種別",
    "コード",
    "顧客名",
    "住所",
    "発送先",
    "広告",
    "商品名",
    "個数",
    "金額",
    "配送方法",
    "受注日",
    "出荷予定日",
    "受注番号",
    "入力者",
]


@dataclass
class Shop:
    saga: int
    kitada: int
    saga_code: str
    kitada_code: str
    op: int
    op2: int
    orders: dict[str, Order]
    carriers: dict[str, int]


def build_shop(database_url: str, make_staff: Callable[..., int]) -> Shop:
    """Two customers, orders of today (three), yesterday and 2015; two operators."""
    add_masters(database_url)
    op = make_staff("op", name="古賀 雅美")
    op2 = make_staff("op2", name="山田 花子")
    saga = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", staff_id=op)
    kitada = add_customer(
        database_url,
        "北田 君子",
        "キタダ キミコ",
        "0985-11-2222",
        staff_id=op2,
        prefecture="宮崎県",
        city="宮崎市",
        street="乙3-2",
    )
    d = today()
    at = dt.datetime.combine(d, dt.time(9), tzinfo=JST)

    async def build(s: AsyncSession) -> tuple[dict[str, Order], dict[str, int], list[str]]:
        m = await masters(s)
        orders = {
            "t1": make_order(
                m,
                customer_id=saga,
                received=d,
                ship=d + dt.timedelta(days=1),
                staff_id=op,
                created_at=at,
                lines=[("30001", 1, None), ("10001", 1, 0), ("20001", 1, 0), ("20001", 2, None)],
                total=27000,
            ),
            "t2": make_order(
                m,
                customer_id=kitada,
                received=d,
                slip="subscription",
                carrier="sagawa",
                allocation="定期",
                created_at=at + dt.timedelta(minutes=5),
                lines=[("10001", 1, None)],
            ),
            "t3": make_order(
                m,
                customer_id=kitada,
                received=d,
                staff_id=op2,
                created_at=at + dt.timedelta(minutes=10),
                lines=[("40001", 3, None)],
            ),
            "yesterday": make_order(
                m,
                customer_id=saga,
                received=d - dt.timedelta(days=1),
                staff_id=op,
                lines=[("50001", 1, None)],
            ),
            "old": make_order(
                m,
                customer_id=saga,
                received=dt.date(2015, 4, 1),
                staff_id=op,
                status="cancelled",
                lines=[("20001", 1, None)],
            ),
        }
        s.add_all(orders.values())
        await s.flush()
        codes = [
            (await s.get(Customer, saga)).code,  # type: ignore[union-attr]
            (await s.get(Customer, kitada)).code,  # type: ignore[union-attr]
        ]
        return orders, m.carriers, codes

    orders, carriers, codes = in_db(database_url, build)
    return Shop(saga, kitada, codes[0], codes[1], op, op2, orders, carriers)


def numbers(html: str) -> list[str]:
    return [r.cells[12].split()[0] for r in tables(html)["orders"].rows if len(r.cells) > 12]


def test_order_list_shows_todays_orders_with_the_seed_columns(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    shop = build_shop(database_url, make_staff)
    login(client, "op")
    r = client.get("/orders")
    assert r.status_code == 200
    assert '<a href="/orders" class="active"' in r.text  # the menu entry
    t = tables(r.text)["orders"]
    assert t.head == LIST_HEAD
    o = shop.orders
    assert numbers(r.text) == [o["t3"].number, o["t2"].number, o["t1"].number]
    d = today()
    t1 = t.rows[2]
    assert t1.cells == [
        "通常",
        shop.saga_code,
        "佐賀 太郎",
        "佐賀県佐賀市鍋島3-2",
        "佐賀県",
        "○○新聞",
        "健康セット ほか1点",
        "3",
        "27,000",
        "ヤマト",
        ymd(d),
        ymd(d + dt.timedelta(days=1)),
        o["t1"].number,
        "古賀 雅美",
    ]
    assert t1.links == [f"/customers/{shop.saga}/purchases"]
    t2 = t.rows[1]
    assert t2.cells[:3] == ["定期", shop.kitada_code, "北田 君子"]
    assert t2.cells[3] == "宮崎県宮崎市乙3-2" and t2.cells[9] == "佐川" and t2.cells[13] == ""
    assert f'value="{d.isoformat()}"' in r.text  # 受付日 defaults to today
    assert "全3件" in r.text


def test_order_list_filters(client: Any, make_staff: Callable[..., int], database_url: str) -> None:
    shop = build_shop(database_url, make_staff)
    login(client, "op2")
    o = shop.orders
    d = today()
    y = (d - dt.timedelta(days=1)).isoformat()

    def listed(**params: Any) -> list[str]:
        r = client.get("/orders", params=params)
        assert r.status_code == 200, r.text
        return numbers(r.text)

    every = {"from": "", "to": ""}
    assert listed(**{"from": y, "to": y}) == [o["yesterday"].number]
    assert listed(**{"from": y}) == [o[k].number for k in ("t3", "t2", "t1", "yesterday")]
    assert listed(**every) == [o[k].number for k in ("t3", "t2", "t1", "yesterday", "old")]
    assert listed(**{"from": "2015/04/01", "to": "2015年4月1日"}) == [o["old"].number]
    assert listed(slip="subscription") == [o["t2"].number]
    assert listed(slip="normal") == [o["t3"].number, o["t1"].number]
    assert listed(carrier=shop.carriers["sagawa"]) == [o["t2"].number]
    assert listed(entered_by=shop.op) == [o["t1"].number]
    assert listed(entered_by=shop.op, **every) == [o[k].number for k in ("t1", "yesterday", "old")]
    assert listed(owner=shop.op2) == [o["t3"].number, o["t2"].number]
    assert listed(code=shop.kitada_code) == [o["t3"].number, o["t2"].number]
    assert listed(name="北田") == [o["t3"].number, o["t2"].number]
    assert listed(name="きただ") == [o["t3"].number, o["t2"].number]
    assert listed(name="ｻｶﾞ") == [o["t1"].number]
    assert listed(name="佐賀", slip="subscription") == []
    r = client.get("/orders", params={"owner": shop.op2, "slip": "subscription"})
    assert r.text.count(f'<option value="{shop.op2}" selected>山田 花子</option>') == 1
    assert '<option value="subscription" selected>定期</option>' in r.text
    r = client.get("/orders", params={"name": "佐賀", "slip": "subscription"})
    assert "条件に合う受注はありません。" in r.text


def test_order_list_bad_input_is_explained_beside_the_field(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    build_shop(database_url, make_staff)
    login(client, "op")
    r = client.get("/orders", params={"from": "2015/13/45"})
    assert r.status_code == 400
    assert "日付は 2025/04/01 の形で入力してください。" in r.text
    assert 'aria-describedby="orders-from-error"' in r.text and 'id="orders"' not in r.text
    r = client.get("/orders", params={"from": "2015-05-01", "to": "2015-04-01"})
    assert r.status_code == 400 and "終了日は開始日以降の日付にしてください。" in r.text
    r = client.get("/orders", params={"slip": "gift", "carrier": "x"})
    assert r.status_code == 400
    assert "伝票区分を選んでください。" in r.text and "一覧から選んでください。" in r.text


def test_order_list_htmx_filters_return_the_list_and_push_the_url(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    shop = build_shop(database_url, make_staff)
    login(client, "op")
    r = client.get("/orders")
    assert 'hx-target="#order-list"' in r.text and 'hx-push-url="true"' in r.text
    r = client.get(
        "/orders",
        params={"slip": "subscription"},
        headers={"HX-Request": "true", "HX-Target": "order-list"},
    )
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="order-list"')
    assert "<html" not in r.text and "autofocus" not in r.text
    assert numbers(r.text) == [shop.orders["t2"].number]
    r = client.get(
        f"/customers/{shop.saga}/orders",
        params={"from": "x"},
        headers={"HX-Request": "true", "HX-Target": "order-list"},
    )
    assert r.status_code == 400 and r.text.lstrip().startswith('<div id="order-list"')
    assert "monitor-tabs" not in r.text


def test_monitor_order_list_tab_highlights_the_customer(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    shop = build_shop(database_url, make_staff)
    login(client, "op")
    r = client.get(f"/customers/{shop.saga}/orders")
    assert r.status_code == 200
    assert 'id="tab-orders" role="tab" class="tab active"' in r.text
    assert 'data-fkey="F1" data-target="#orders-from"' in r.text
    rows = tables(r.text)["orders"].rows
    assert [r.cells[2] for r in rows] == ["北田 君子", "北田 君子", "佐賀 太郎"]
    assert ["current" in r.classes for r in rows] == [False, False, True]
    assert f'action="/customers/{shop.saga}/orders"' in r.text
    assert client.get("/customers/999999/orders").status_code == 404


def test_order_list_pages_by_50(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    shop = build_shop(database_url, make_staff)

    async def build(s: AsyncSession) -> None:
        m = await masters(s)
        s.add_all(
            make_order(m, customer_id=shop.saga, received=today(), lines=[("10001", 1, None)])
            for _ in range(57)
        )

    in_db(database_url, build)
    login(client, "op")
    r = client.get("/orders")
    assert len(numbers(r.text)) == 50 and "全60件中 1〜50件" in r.text
    next_url = re.search(r'<a href="([^"]+)"[^>]*rel="next"', r.text)
    assert next_url is not None
    r = client.get(next_url.group(1).replace("&amp;", "&"))
    assert len(numbers(r.text)) == 10 and "51〜60件" in r.text


def test_orders_csv_for_supervisors(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    shop = build_shop(database_url, make_staff)
    make_staff("sv", role="supervisor", name="主任 一郎")
    login(client, "op")
    assert "CSV出力" not in client.get("/orders").text
    assert client.get("/orders.csv").status_code == 403
    client.cookies.clear()
    login(client, "sv")
    page = client.get("/orders", params={"slip": "normal"}).text
    assert 'href="/orders.csv?from=' in page and "CSV出力" in page
    r = client.get("/orders.csv", params={"from": "", "to": "", "entered_by": shop.op})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="orders_all.csv"' in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    text = r.content.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["受注番号", "伝票種別", "受注日"]
    o = shop.orders
    assert [row[0] for row in rows[1:]] == [o[k].number for k in ("t1", "yesterday", "old")]
    t1 = dict(zip(rows[0], rows[1], strict=True))
    assert t1["顧客名"] == "佐賀 太郎" and t1["商品名"] == "健康セット ほか1点"
    assert t1["金額"] == "27000" and t1["配送方法"] == "ヤマト" and t1["入力者"] == "古賀 雅美"
    assert dict(zip(rows[0], rows[3], strict=True))["状態"] == "キャンセル"

    async def exports(s: AsyncSession) -> list[AuditLog]:
        return list(await s.scalars(select(AuditLog).where(AuditLog.action == "export_orders")))

    logged = in_db(database_url, exports)
    assert len(logged) == 1 and logged[0].changes["rows"] == 3
    bad = client.get("/orders.csv", params={"from": "nope"})
    assert bad.status_code == 400 and "日付は" in bad.text


def test_the_call_travels_with_reorder_paging_and_list_links(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    shop = build_shop(database_url, make_staff)

    async def answered(s: AsyncSession) -> int:
        call = Call(
            source="simulator",
            source_call_id="c-1",
            customer_id=shop.saga,
            staff_id=shop.op,
            state="answered",
        )
        s.add(call)
        await s.flush()
        return call.id

    call_id = in_db(database_url, answered)
    login(client, "op")
    r = client.get(f"/customers/{shop.saga}/purchases?call={call_id}")
    t1 = shop.orders["t1"]
    assert f'href="/customers/{shop.saga}/order?reorder={t1.id}&amp;call={call_id}"' in r.text
    r = client.get(f"/customers/{shop.saga}/orders?call={call_id}")
    assert f'<input type="hidden" name="call" value="{call_id}">' in r.text
    rows = tables(r.text)["orders"].rows
    assert rows[2].links == [f"/customers/{shop.saga}/purchases?call={call_id}"]
    assert rows[0].links == [f"/customers/{shop.kitada}/purchases"]


def test_orders_csv_quotes_text_a_spreadsheet_would_run(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    add_masters(database_url)
    make_staff("sv", role="supervisor")
    cid = add_customer(database_url, "=HYPERLINK(1)", "", "0952-32-6611", street="-1-2")

    async def build(s: AsyncSession) -> None:
        s.add(
            make_order(
                await masters(s), customer_id=cid, received=today(), lines=[("10001", 1, None)]
            )
        )

    in_db(database_url, build)
    login(client, "sv")
    rows = list(csv.DictReader(io.StringIO(client.get("/orders.csv").content.decode("utf-8-sig"))))
    assert rows[0]["顧客名"] == "'=HYPERLINK(1)" and rows[0]["住所"] == "佐賀県佐賀市-1-2"
