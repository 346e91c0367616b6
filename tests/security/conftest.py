"""One app and one database per test module, with a small world of real objects (customers with
orders, a subscription, a ship-to, a call, a job run, a work list) and one logged-in session per
role, so the generated suites below can walk every route quickly."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.config import Settings, load_settings
from tests.conftest import BACKEND, _pg_admin, _pg_base, _with_db, csrf_of, login, run_async

ROLES = ("operator", "supervisor", "backoffice", "admin")
PASSWORD = "password123"
# The log-in of each role's test account, and its extension.
ACCOUNTS = {
    "operator": ("sec_op", "251"),
    "supervisor": ("sec_sv", "351"),
    "backoffice": ("sec_bo", "451"),
    "admin": ("sec_ad", "551"),
}
# A second operator: another session, for "foreign token" checks.
OTHER_OPERATOR = ("sec_op2", "252")
WEBHOOK_SOURCE = "cloudpbx"
WEBHOOK_SECRET = "security-suite-webhook-secret"

# The tables whose row counts say whether a request wrote anything.
MAIN_TABLES = (
    "customers",
    "customer_phones",
    "customer_emails",
    "ship_tos",
    "orders",
    "order_lines",
    "subscriptions",
    "subscription_items",
    "responses",
    "actions",
    "calls",
    "staff",
    "products",
    "ads",
    "faqs",
    "campaigns",
    "outbound_lists",
    "outbound_entries",
    "job_runs",
)


@dataclass
class World:
    """Ids of real objects, one per path parameter a route may take."""

    url: str
    params: dict[str, str] = field(default_factory=dict)
    staff_ids: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def sec_database_url(db_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "postgres":
        base = _pg_base()
        name = f"yebisu_sec_{uuid.uuid4().hex[:12]}"
        tpl = db_template.rpartition("/")[2]
        with _pg_admin(base) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
        yield _with_db(base, name)
        with _pg_admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path_factory.mktemp("sec") / "yebisu.db"
        shutil.copy(db_template, path)
        yield f"sqlite+aiosqlite:///{path}"


async def _build_world(url: str) -> World:
    from app.auth.service import create_staff
    from app.calls.models import Call
    from app.customers.models import Customer, ShipTo
    from app.db import make_engine, make_sessionmaker, transaction
    from app.demo.service import generate
    from app.masters.models import Product
    from app.outbound.models import OutboundEntry, OutboundList, OutboundOperator
    from app.runs.models import JobRun
    from app.subscriptions.models import Subscription

    await generate(url, customers=30, seed=7)
    world = World(url=url)
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            for role, (login_id, ext) in ACCOUNTS.items():
                staff = await create_staff(
                    s, login=login_id, name=login_id, password=PASSWORD, role=role, extension=ext
                )
                world.staff_ids[role] = staff.id
            other = await create_staff(
                s,
                login=OTHER_OPERATOR[0],
                name=OTHER_OPERATOR[0],
                password=PASSWORD,
                role="operator",
                extension=OTHER_OPERATOR[1],
            )
            world.staff_ids["operator2"] = other.id
            await s.flush()
            sub = (await s.scalars(select(Subscription).order_by(Subscription.id))).first()
            assert sub is not None, "the demo data has no subscription"
            customer = await s.get(Customer, sub.customer_id)
            assert customer is not None
            ship_to = ShipTo(
                customer_id=customer.id,
                label="勤務先",
                name="試験 花子",
                kana="シケン ハナコ",
                postcode="8400041",
                prefecture="佐賀県",
                city="佐賀市",
                street="城内1-1-59",
            )
            s.add(ship_to)
            now = dt.datetime.now(dt.UTC)
            call = Call(
                source="simulator",
                source_call_id="sec-" + uuid.uuid4().hex[:8],
                line="main",
                extension=ACCOUNTS["operator"][1],
                caller_raw="09012345678",
                caller_e164="+819012345678",
                state="missed",
                match_kind="exact",
                customer_id=customer.id,
                started_at=now - dt.timedelta(minutes=30),
                ended_at=now - dt.timedelta(minutes=29),
                callback_status="pending",
                targets=[world.staff_ids["operator"]],
            )
            s.add(call)
            run = JobRun(name="subscription_orders", params={}, status="done", trigger="manual")
            s.add(run)
            lst = OutboundList(name="セキュリティ試験リスト", criteria={}, active=True)
            s.add(lst)
            await s.flush()
            s.add(OutboundOperator(list_id=lst.id, staff_id=world.staff_ids["operator"]))
            others = (
                await s.scalars(
                    select(Customer.id)
                    .where(Customer.id != customer.id)
                    .order_by(Customer.id)
                    .limit(20)
                )
            ).all()
            entries = [
                OutboundEntry(list_id=lst.id, customer_id=cid, position=i)
                for i, cid in enumerate([customer.id, *others])
            ]
            s.add_all(entries)
            await s.flush()
            product_id = await s.scalar(select(func.min(Product.id)))
            world.params = {
                "customer_id": str(customer.id),
                "ship_to_id": str(ship_to.id),
                "subscription_id": str(sub.id),
                "call_id": str(call.id),
                "run_id": str(run.id),
                "list_id": str(lst.id),
                "entry_id": str(entries[0].id),
                "kind": "phone",
                "key": "products",
                "id": str(product_id),
                "source": WEBHOOK_SOURCE,
                "path": "css/app.css",  # a file under /static
            }
    finally:
        await engine.dispose()
    return world


@pytest.fixture(scope="module")
def sec_world(sec_database_url: str) -> World:
    world: World = run_async(_build_world(sec_database_url))
    return world


@pytest.fixture(scope="module")
def sec_settings(sec_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    redis = ""
    if BACKEND == "postgres":
        redis = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    toml = tmp_path_factory.mktemp("seccfg") / "config.toml"
    toml.write_text(
        "[[cti.sources]]\n"
        'kind = "simulator"\nname = "simulator"\nline = "main"\n\n'
        "[[cti.sources]]\n"
        f'kind = "webhook"\nname = "{WEBHOOK_SOURCE}"\nline = "main"\n'
        f'secret = "{WEBHOOK_SECRET}"\n',
        encoding="utf-8",
    )
    return load_settings(
        path=toml,
        environ={
            "YEBISU_DATABASE_URL": sec_database_url,
            "YEBISU_SERVER_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "YEBISU_REDIS_URL": redis,
            "YEBISU_REDIS_CHANNEL_PREFIX": "ys" + uuid.uuid4().hex[:8],
        },
    )


TOKEN_RE = re.compile(r'"X-CSRF-Token": "([^"]+)"|name="csrf_token" value="([^"]+)"')


def token_in(html: str) -> str:
    """The CSRF token a page carries (htmx header or a form's hidden field)."""
    m = TOKEN_RE.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1) or m.group(2)


class Sessions:
    """One TestClient (one app, one event loop) whose cookie jar is swapped per role."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.jars: dict[str, Any] = {}
        self.cookies = type(client.cookies)  # the test client's own httpx
        self.tokens: dict[str, str] = {}
        self.current = ""

    def use(self, who: str) -> Any:
        """Make ``who`` (a role, "operator2" or "anonymous") the client's session."""
        if who == self.current:
            return self.client
        if self.current:
            self.jars[self.current] = self.cookies(self.client.cookies)
        self.client.cookies = self.cookies(self.jars.get(who, self.cookies()))
        self.current = who
        if who not in self.tokens:
            if who.startswith("anonymous"):
                self.tokens[who] = csrf_of(self.client)
            else:
                self.login(who)
        return self.client

    def login(self, who: str) -> None:
        login_id, ext = OTHER_OPERATOR if who == "operator2" else ACCOUNTS[who]
        self.client.cookies = self.cookies()
        r = login(self.client, login_id, PASSWORD, extension=ext)
        assert r.status_code == 303, f"log-in of {who} failed: {r.status_code} {r.text[:300]}"
        self.tokens[who] = token_in(self.client.get("/").text)

    def token(self, who: str) -> str:
        self.use(who)
        return self.tokens[who]

    def relogin(self, who: str) -> None:
        """After a log-out (or a revoked session): log in again."""
        self.use(who)
        self.tokens.pop(who, None)
        self.login(who)


@pytest.fixture(scope="module")
def sec_app(
    sec_settings: Settings, sec_world: World, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    from app.main import create_app

    return create_app(sec_settings, var_dir=tmp_path_factory.mktemp("secvar"))


@pytest.fixture(scope="module")
def sessions(sec_app: Any) -> Iterator[Sessions]:
    from starlette.testclient import TestClient

    with TestClient(sec_app, base_url="http://testserver") as client:
        yield Sessions(client)


async def _counts(url: str) -> dict[str, int]:
    from app.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            out = {}
            for table in MAIN_TABLES:
                out[table] = int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            return out
    finally:
        await engine.dispose()


def row_counts(url: str) -> dict[str, int]:
    """Rows in each of the main tables."""
    counts: dict[str, int] = run_async(_counts(url))
    return counts


def static_file() -> str:
    """A real file under /static (for the mount)."""
    root = Path(__file__).resolve().parents[2] / "static"
    for p in sorted(root.rglob("*.css")):
        return str(p.relative_to(root))
    return "css/app.css"
