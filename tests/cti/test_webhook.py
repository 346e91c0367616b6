"""Webhook: HMAC signature check and body parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from cti_bridge.config import WebhookSourceConfig
from cti_bridge.events import CallAnswered, CallEnded, CallRinging, OutboundDialing
from cti_bridge.sources.webhook import (
    WebhookAuthError,
    WebhookError,
    WebhookSource,
    WebhookStaleError,
    check_signature,
    parse_webhook,
    sign,
    verify_signature,
)
from cti_bridge.supervisor import Supervisor

from .conftest import Sink, until

SECRET = "whsec-0123456789"
BODY = json.dumps(
    {
        "event": "ringing",
        "call_id": "c-1",
        "from": "03-1234-5678",
        "to": "0501234567",
        "extension": "201",
        "at": "2025-03-21T14:05:00+09:00",
    }
).encode()


TS = "1742533500"  # 2025-03-21T05:05:00Z
NOW = 1742533500.0


def test_signature_covers_timestamp_and_body() -> None:
    good = (
        "sha256=" + hmac.new(SECRET.encode(), TS.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    )
    assert sign(SECRET, BODY, TS) == good == sign(SECRET, BODY, int(TS))
    assert verify_signature(SECRET, BODY, good, TS)
    assert verify_signature(SECRET.encode(), BODY, good.upper().replace("SHA256=", "sha256="), TS)
    assert verify_signature(SECRET, BODY, "  " + good + " ", f" {TS} ")
    check_signature(SECRET, BODY, good, TS, tolerance_s=300, now=NOW + 299)


@pytest.mark.parametrize(
    ("header", "timestamp"),
    [
        (None, TS),
        ("", TS),
        ("sha256=", TS),
        ("sha1=" + hashlib.sha1(BODY).hexdigest(), TS),
        # The old form (body only) and no "sha256=" prefix.
        ("sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(), TS),
        (hmac.new(SECRET.encode(), TS.encode() + b"." + BODY, hashlib.sha256).hexdigest(), TS),
        (sign("other-secret", BODY, TS), TS),
        (sign(SECRET, BODY + b" ", TS), TS),
        (sign(SECRET, BODY, TS), str(int(TS) + 1)),  # timestamp changed after signing
        (sign(SECRET, BODY, TS), None),
        (sign(SECRET, BODY, "1742533500.0"), "1742533500.0"),
        (sign(SECRET, BODY, "¹⁷⁴²"), "¹⁷⁴²"),  # superscript digits are not a timestamp
        ("sha256=zz", TS),
        ("sha256=ｆｆ", TS),
    ],
)
def test_signature_rejected(header: str | None, timestamp: str | None) -> None:
    assert not verify_signature(SECRET, BODY, header, timestamp)
    with pytest.raises(WebhookAuthError, match="signature"):
        check_signature(SECRET, BODY, header, timestamp, tolerance_s=300, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86400 * 365])
def test_stale_or_future_timestamp_is_refused(offset: int) -> None:
    with pytest.raises(WebhookStaleError, match="X-Yebisu-Timestamp"):
        check_signature(SECRET, BODY, sign(SECRET, BODY, TS), TS, tolerance_s=300, now=NOW - offset)


def test_empty_secret_never_verifies() -> None:
    assert not verify_signature("", BODY, sign("", BODY, TS), TS)


def test_deeply_nested_body_is_a_clean_400() -> None:
    with pytest.raises(WebhookError, match="nested too deeply"):
        parse_webhook("c", "main", b"[" * 30000 + b"]" * 30000)
    with pytest.raises(WebhookError):
        parse_webhook("c", "main", b'{"event": "ringing", "x": ' + b"[" * 30000)


def test_parse_ringing() -> None:
    [ev] = parse_webhook("cloud", "main", BODY)
    assert isinstance(ev, CallRinging)
    assert (ev.source, ev.call_id, ev.line, ev.extension) == ("cloud", "c-1", "main", "201")
    assert (ev.caller_raw, ev.number, ev.withheld) == ("03-1234-5678", "+81312345678", "")
    assert ev.at == datetime(2025, 3, 21, 5, 5, tzinfo=UTC)


def test_parse_privacy_and_other_events() -> None:
    [ev] = parse_webhook(
        "c",
        "main",
        {
            "event": "ringing",
            "call_id": "x",
            "from": "0312345678",
            "privacy": True,
            "line": "osaka",
        },
    )
    assert isinstance(ev, CallRinging)
    assert (ev.number, ev.withheld, ev.line, ev.extension) == ("", "private", "osaka", None)
    assert "0312345678" not in repr(ev)
    [ev] = parse_webhook("c", "main", {"event": "ringing", "call_id": "x", "from": ""})
    assert isinstance(ev, CallRinging) and ev.withheld == "unavailable"
    [ans] = parse_webhook("c", "main", {"event": "answered", "call_id": "x", "extension": 202})
    assert isinstance(ans, CallAnswered) and ans.extension == "202"
    [end] = parse_webhook("c", "main", {"event": "ended", "call_id": "x", "answered": True})
    assert isinstance(end, CallEnded) and end.answered and end.reason == "hangup"
    [miss] = parse_webhook("c", "main", {"event": "missed", "call_id": "x", "answered": True})
    assert isinstance(miss, CallEnded) and not miss.answered and miss.reason == "missed"
    [out] = parse_webhook(
        "c", "main", {"event": "dialing", "call_id": "y", "extension": "201", "to": "0312345678"}
    )
    assert isinstance(out, OutboundDialing) and out.number == "0312345678"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body: not JSON"),
        (b"[]", "body: must be a JSON object"),
        ({"call_id": "x"}, "event: required"),
        ({"event": "exploded", "call_id": "x"}, "event: must be one of"),
        ({"event": "answered"}, "call_id: required"),
        ({"event": "answered", "call_id": ""}, "call_id: required"),
        ({"event": "answered", "call_id": ["x"]}, "call_id: must be a string"),
        ({"event": "answered", "call_id": "x" * 200}, "call_id: longer than"),
        ({"event": "ringing", "call_id": "x", "privacy": "yes"}, "privacy: must be true"),
        ({"event": "ended", "call_id": "x", "answered": 1}, "answered: must be true"),
        ({"event": "answered", "call_id": "x", "at": "yesterday"}, "at: not an ISO 8601"),
        ({"event": "answered", "call_id": "x", "at": "2025-03-21T14:05:00"}, "at: needs a UTC"),
    ],
)
def test_parse_errors_name_the_field(body: object, message: str) -> None:
    with pytest.raises(WebhookError, match=message):
        parse_webhook("c", "main", body)  # type: ignore[arg-type]


async def test_webhook_source_receive(sink: Sink) -> None:
    source = WebhookSource(WebhookSourceConfig(name="cloud", line="main", secret=SECRET))
    now = str(int(time.time()))
    with pytest.raises(WebhookError, match="not running"):
        await source.receive(BODY, sign(SECRET, BODY, now), now)
    sup = Supervisor(source, sink)
    sup.start()
    try:
        await until(lambda: sup.state == "up")
        with pytest.raises(WebhookAuthError):
            await source.receive(BODY, None, now)
        with pytest.raises(WebhookAuthError):
            await source.receive(BODY, sign("nope", BODY, now), now)
        with pytest.raises(WebhookStaleError):
            await source.receive(BODY, sign(SECRET, BODY, TS), TS)  # signed a year ago
        assert sink.events == []
        events = await source.receive(BODY, sign(SECRET, BODY, now), now)
        assert sink.events == events and isinstance(events[0], CallRinging)
    finally:
        await sup.stop()
