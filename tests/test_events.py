"""Events features publish reach their subscribers only after the commit, once, in order."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.db import make_engine, make_sessionmaker, transaction
from app.events import (
    CallChanged,
    Event,
    EventBus,
    OrderPlaced,
    ResponseSaved,
    publish,
)
from tests.conftest import csrf_of, login


async def test_events_wait_for_the_commit_and_vanish_with_a_rollback(database_url: str) -> None:
    bus = EventBus()
    heard: list[Event] = []
    bus.subscribe(Event, heard.append)  # every kind
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine, events=bus)
    try:
        async with transaction(maker) as session:
            publish(session, OrderPlaced(order_id=1, customer_id=2))
            publish(session, ResponseSaved(customer_id=2))
            await session.scalar(select(AuditLog.id).limit(1))
            assert heard == []  # not before the commit
        assert heard == [OrderPlaced(order_id=1, customer_id=2), ResponseSaved(customer_id=2)]

        heard.clear()
        with pytest.raises(RuntimeError):
            async with transaction(maker) as session:
                publish(session, CallChanged(call_id=3))
                raise RuntimeError("rolled back")
        assert heard == []
    finally:
        await engine.dispose()


async def test_a_failing_subscriber_does_not_stop_the_others(database_url: str) -> None:
    bus = EventBus()
    heard: list[int] = []

    def broken(_event: CallChanged) -> None:
        raise ValueError("subscriber bug")

    bus.subscribe(CallChanged, broken)
    bus.subscribe(CallChanged, lambda e: heard.append(e.call_id))
    off = bus.subscribe(CallChanged, lambda e: heard.append(-e.call_id))
    off()  # unsubscribed: hears nothing
    engine = make_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine, events=bus)) as session:
            publish(session, CallChanged(call_id=7))
        assert heard == [7]
    finally:
        await engine.dispose()


def test_a_request_publishes_after_its_commit_and_not_on_a_refusal(
    client: Any, make_staff: Any
) -> None:
    make_staff("taro")
    assert login(client, "taro").status_code == 303
    heard: list[Any] = []
    client.app.state.events.subscribe(Event, heard.append)
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf_of(client)}
    refused = client.post("/presence", data={"state": "nonsense"}, headers=headers)
    assert refused.status_code == 400 and heard == []
    r = client.post("/presence", data={"state": "away"}, headers=headers)
    assert r.status_code == 200
    assert [(type(e).__name__, e.state) for e in heard] == [("PresenceChanged", "away")]
