"""Event model: JSON round trip, labels, stale guard."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cti_bridge.events import (
    WITHHELD_LABELS,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRinging,
    OutboundDialing,
    event_from_dict,
    event_from_json,
    is_stale,
)

AT = datetime(2025, 3, 21, 5, 5, 0, 123456, tzinfo=UTC)

EVENTS: list[CallEvent] = [
    CallRinging(
        source="modem",
        call_id="c1",
        line="main",
        at=AT,
        extension=None,
        caller_raw="0312345678",
        number="+81312345678",
        caller_name="スズキ",
    ),
    CallRinging(
        source="sip", call_id="c2", line="main", at=AT, extension="201", withheld="private"
    ),
    CallAnswered(source="ami", call_id="c3", line="support", at=AT, extension="202"),
    CallEnded(source="ami", call_id="c3", line="support", at=AT, answered=True, reason="hangup"),
    OutboundDialing(
        source="ami", call_id="c4", line="main", at=AT, extension="201", number="+8131"
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_round_trip_through_json(event: CallEvent) -> None:
    text = event.to_json()
    data = json.loads(text)
    assert data["type"] == event.type
    assert data["at"] == "2025-03-21T05:05:00.123456+00:00"
    assert event_from_json(text) == event
    assert CallEvent.from_dict(event.to_dict()) == event


def test_events_are_frozen_and_default_to_utc_now() -> None:
    ev = CallAnswered(source="s", call_id="c", line="l")
    assert ev.at.tzinfo is UTC
    with pytest.raises(AttributeError):
        ev.call_id = "x"  # type: ignore[misc]


def test_from_dict_rejects_unknown_type_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        event_from_dict({"type": "exploded"})
    with pytest.raises(ValueError, match="unknown field"):
        event_from_dict({"type": "answered", "source": "s", "call_id": "c", "line": "", "x": 1})
    with pytest.raises(ValueError):
        event_from_dict({"type": "answered", "source": "s"})


def test_naive_time_is_read_as_utc() -> None:
    ev = event_from_dict(
        {"type": "answered", "source": "s", "call_id": "c", "line": "", "at": "2025-03-21T05:05:00"}
    )
    assert ev.at == datetime(2025, 3, 21, 5, 5, tzinfo=UTC)


def test_withheld_labels_are_japanese() -> None:
    assert WITHHELD_LABELS == {
        "private": "非通知",
        "out_of_area": "表示圏外",
        "payphone": "公衆電話",
        "error": "受信エラー",
        "unavailable": "通知不可",
    }


def test_is_stale_only_for_old_ringing() -> None:
    now = AT + timedelta(seconds=30)
    ringing = EVENTS[0]
    assert is_stale(ringing, 10, now=now)
    assert not is_stale(ringing, 60, now=now)
    assert not is_stale(EVENTS[3], 10, now=now)  # an end is never stale
    fresh = CallRinging(source="s", call_id="c", line="l")
    assert not is_stale(fresh, 5)
