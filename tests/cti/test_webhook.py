"""Webhook: HMAC signature check and body parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from cti_bridge.config import WebhookSourceConfig
from cti_bridge.events import CallAnswered, CallEnded, CallRinging, OutboundDialing
from cti_bridge.sources.webhook import (
    WebhookAuthError,
    WebhookError,
    WebhookSource,
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


def test_signature_accepted() -> None:
    good = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY) == good
    assert verify_signature(SECRET, BODY, good)
    assert verify_signature(SECRET.encode(), BODY, good.upper().replace("SHA256=", "sha256="))
    assert verify_signature(SECRET, BODY, "  " + good + " ")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + hashlib.sha1(BODY).hexdigest(),
        hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),  # no "sha256=" prefix
        sign("other-secret", BODY),
        sign(SECRET, BODY + b" "),
        "sha256=zz",
    ],
)
def test_signature_rejected(header: str | None) -> None:
    assert not verify_signature(SECRET, BODY, header)


def test_empty_secret_never_verifies() -> None:
    assert not verify_signature("", BODY, sign("", BODY))


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
    with pytest.raises(WebhookError, match="not running"):
        await source.receive(BODY, sign(SECRET, BODY))
    sup = Supervisor(source, sink)
    sup.start()
    try:
        await until(lambda: sup.state == "up")
        with pytest.raises(WebhookAuthError):
            await source.receive(BODY, None)
        with pytest.raises(WebhookAuthError):
            await source.receive(BODY, sign("nope", BODY))
        assert sink.events == []
        events = await source.receive(BODY, sign(SECRET, BODY))
        assert sink.events == events and isinstance(events[0], CallRinging)
    finally:
        await sup.stop()
