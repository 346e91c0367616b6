"""Click-to-dial (C7) from the outbound work screen: ``Originate`` to the operator's extension
over a replayed AMI session (fake Asterisk), the ``tel:`` fallback, and the result form that
records the attempt as an action."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.calls.models import Call
from app.config import Settings
from app.db import make_engine, make_sessionmaker, transaction
from app.outbound.models import OutboundEntry
from app.responses.models import Action, Response
from cti_bridge.config import AmiSourceConfig, SimulatorSourceConfig
from tests.conftest import csrf_of, login, run_async
from tests.cti.fake_ami import FakeAsterisk
from tests.factories import add_customer


class AsteriskThread:
    """A fake Asterisk on its own event loop (the app's TestClient runs another one)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = FakeAsterisk()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def asterisk() -> Iterator[FakeAsterisk]:
    runner = AsteriskThread()
    runner.start()
    try:
        yield runner.server
    finally:
        runner.stop()


def wait_for(predicate: Callable[[], bool], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


async def _entry_of(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            entry = await s.scalar(select(OutboundEntry))
            assert entry is not None
            from app.customers.models import CustomerPhone

            phone = await s.scalar(
                select(CustomerPhone.id).where(CustomerPhone.customer_id == entry.customer_id)
            )
            assert phone is not None
            return entry.id, phone
    finally:
        await engine.dispose()


async def _rows(url: str, model: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            return list((await s.scalars(select(model))).all())
    finally:
        await engine.dispose()


def _make_list(client: Any, database_url: str, op: int) -> tuple[int, int]:
    token = csrf_of(client)
    made = client.post(
        "/outbound/lists",
        data={"csrf_token": token, "days": "1", "list_name": "休眠", "operators": [str(op)]},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    entry_id, phone_id = run_async(_entry_of(database_url))
    return int(entry_id), int(phone_id)


def _ami(asterisk: FakeAsterisk) -> AmiSourceConfig:
    """The AMI source of the replayed Asterisk, reconnecting quickly."""
    return AmiSourceConfig(
        name="ami",
        line="main",
        host="127.0.0.1",
        port=asterisk.port,
        username="yebisu",
        secret="s3cret",
        reconnect_min_s=0.02,
        reconnect_max_s=0.1,
    )


def test_originate_to_the_operators_extension(
    asterisk: FakeAsterisk,
    settings: Settings,
    tmp_path: Path,
    database_url: str,
    make_staff: Callable[..., int],
) -> None:
    from starlette.testclient import TestClient

    from app.main import create_app

    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "03-1234-5678", code="C001")
    # An old registration: the customer is dormant for any number of days ≥ 1.
    op = make_staff("koga", name="古賀 雅美", role="supervisor", extension="201")
    settings.cti.sources = [
        SimulatorSourceConfig(),
        _ami(asterisk),
    ]
    app = create_app(settings, var_dir=tmp_path / "var")
    with TestClient(app, base_url="http://testserver") as client:
        assert login(client, "koga").status_code == 303
        _backdate(database_url)
        entry_id, phone_id = _make_list(client, database_url, op)
        page = client.post("/outbound/lists/1/next", data={"csrf_token": csrf_of(client)})
        # 次の顧客 opens the customer monitor in outbound mode: its banner dials.
        assert page.status_code == 200 and "佐賀 太郎" in page.text
        assert str(page.url).endswith(f"?outbound={entry_id}")
        assert f'hx-get="/outbound/entries/{entry_id}/banner"' in page.text
        assert f"outbound={entry_id}" in page.text.split('id="monitor-tabs"')[1].split("</nav>")[0]
        banner = client.get(f"/outbound/entries/{entry_id}/banner")
        assert 'class="dial"' in banner.text  # a 発信 button: the PBX can dial
        assert 'id="outbound-result"' in banner.text
        wait_for(lambda: asterisk.logins >= 1, "the AMI login")
        dialled = client.post(
            f"/outbound/entries/{entry_id}/dial",
            data={"csrf_token": csrf_of(client), "phone": str(phone_id)},
        )
        assert dialled.status_code == 200, dialled.text
        assert "内線 201 を呼び出しています" in dialled.text
        originate = next(a for a in asterisk.actions if a.get("action") == "Originate")
        assert originate["channel"] == "PJSIP/201"
        assert originate["exten"] == "0312345678"
        # The replayed session reports the call: logged as an outbound call of the operator.
        wait_for(
            lambda: any(c.direction == "out" for c in run_async(_rows(database_url, Call))),
            "the outbound call",
        )
        wait_for(
            lambda: any(
                c.direction == "out" and c.ended_at is not None
                for c in run_async(_rows(database_url, Call))
            ),
            "the outbound call's hang-up",
        )
        [call] = [c for c in run_async(_rows(database_url, Call)) if c.direction == "out"]
        assert call.staff_id == op and call.extension == "201"
        # The result from the banner: an action 電話 with its result, linked to the call;
        # then on to the next customer (none left).
        saved = client.post(
            f"/outbound/entries/{entry_id}/result",
            data={
                "csrf_token": csrf_of(client),
                "result": "connected",
                "next": "1",
            },
            headers={"HX-Request": "true"},
        )
        assert saved.status_code == 200
        assert saved.headers["HX-Redirect"] == "/outbound?empty=1"
        done = client.get("/outbound?empty=1")
        assert "今かけられる顧客は残っていません" in done.text
        actions = [a for a in run_async(_rows(database_url, Action)) if a.kind == "call_out"]
        assert [(a.result, a.staff_id, a.call_id) for a in actions] == [("通話", op, call.id)]
        [call] = [c for c in run_async(_rows(database_url, Call)) if c.direction == "out"]
        assert call.customer_id is not None  # the call is the entry's customer's
        # The outbound call leaves no 問合せ response to complete: the result is its record.
        assert [r for r in run_async(_rows(database_url, Response)) if r.call_id == call.id] == []
        # Recorded once: the same entry cannot take a second result.
        again = client.post(
            f"/outbound/entries/{entry_id}/result",
            data={"csrf_token": csrf_of(client), "result": "connected"},
            headers={"HX-Request": "true"},
        )
        assert again.status_code == 400 and "結果は登録済みです" in again.text


def _backdate(url: str) -> None:
    async def go() -> None:
        from sqlalchemy import text

        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                await s.execute(
                    text("UPDATE customer_last_actions SET last_at = :t"),
                    {"t": "2020-01-01 00:00:00.000000"}
                    if engine.dialect.name == "sqlite"
                    else {"t": "2020-01-01T00:00:00+00:00"},
                )
        finally:
            await engine.dispose()

    run_async(go())


def test_without_a_dialling_source_a_tel_link(
    settings: Settings, tmp_path: Path, database_url: str, make_staff: Callable[..., int]
) -> None:
    from starlette.testclient import TestClient

    from app.main import create_app

    add_customer(database_url, "北田 君子", "キタダ キミコ", "0952-32-6611", code="C002")
    op = make_staff("koga", name="古賀 雅美", role="supervisor", extension="201")
    settings.cti.sources = []
    with TestClient(create_app(settings, var_dir=tmp_path / "var")) as client:
        assert login(client, "koga").status_code == 303
        _tel_flow(client, database_url, op)


def _tel_flow(client: Any, database_url: str, op: int) -> None:
    _backdate(database_url)
    entry_id, phone_id = _make_list(client, database_url, op)
    page = client.get(f"/outbound/entries/{entry_id}/banner")
    assert 'href="tel:+81952326611"' in page.text and 'class="dial"' not in page.text
    answer = client.post(
        f"/outbound/entries/{entry_id}/dial",
        data={"csrf_token": csrf_of(client), "phone": str(phone_id)},
    )
    assert "tel:+81952326611" in answer.text
    bad = client.post(
        f"/outbound/entries/{entry_id}/result",
        data={"csrf_token": csrf_of(client), "result": "callback", "callback_at": "あした"},
    )
    assert bad.status_code == 400
    assert "再コール日時は YYYY/MM/DD HH:MM" in bad.text


def test_an_extension_taken_over_is_not_dialled_from_the_old_holder(
    asterisk: FakeAsterisk,
    settings: Settings,
    tmp_path: Path,
    database_url: str,
    make_staff: Callable[..., int],
) -> None:
    """After another log-in took extension 201 over, 発信 of the one it was taken from would
    ring the new holder's phone: it is refused with a message and nothing is dialled."""
    from starlette.testclient import TestClient

    from app.main import create_app

    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "03-1234-5678", code="C001")
    op = make_staff("koga", name="古賀 雅美", role="supervisor", extension="201")
    make_staff("yamaguchi", name="山口 由美", extension="202", allowed_extensions="*")
    settings.cti.sources = [
        _ami(asterisk),
    ]
    app = create_app(settings, var_dir=tmp_path / "var")
    with TestClient(app, base_url="http://testserver") as client:
        assert login(client, "koga").status_code == 303
        _backdate(database_url)
        entry_id, phone_id = _make_list(client, database_url, op)
        client.post("/outbound/lists/1/next", data={"csrf_token": csrf_of(client)})
        # Another PC (its own cookies, the same app and event loop) takes 201 over.
        koga = dict(client.cookies)
        client.cookies.clear()
        assert login(client, "yamaguchi", extension="201", takeover="1").status_code == 303
        client.cookies.clear()
        client.cookies.update(koga)
        wait_for(lambda: asterisk.logins >= 1, "the AMI login")
        dialled = client.post(
            f"/outbound/entries/{entry_id}/dial",
            data={"csrf_token": csrf_of(client), "phone": str(phone_id)},
        )
        assert dialled.status_code == 409
        assert "内線がほかの担当者に引き継がれたため発信できません" in dialled.text
        assert not any(a.get("action") == "Originate" for a in asterisk.actions)
