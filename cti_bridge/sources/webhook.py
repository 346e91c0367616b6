"""Cloud PBX webhook: signature check and JSON body → call events (see ``docs/webhook.md``).

The HTTP route (``POST /cti/webhook/{source}``) belongs to the app; it calls
:func:`check_signature` + :func:`parse_webhook` (or :meth:`WebhookSource.receive`) and answers
401 on :class:`WebhookAuthError`, 400 on :class:`WebhookError`, 204 otherwise. Refusing a
repeated request (409) needs memory shared by every app process, so it is the app's part.

The signature covers a timestamp and the body: ``X-Yebisu-Timestamp: <unix seconds>`` and
``X-Yebisu-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}." + body)>``; a timestamp
further than ``tolerance_s`` from our clock is refused, so a captured request cannot be
replayed later.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cti_bridge.config import WebhookSourceConfig
from cti_bridge.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRinging,
    OutboundDialing,
    utcnow,
)
from cti_bridge.numbers import normalise_caller
from cti_bridge.source import Emit, Source

__all__ = [
    "MAX_BODY",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookAuthError",
    "WebhookError",
    "WebhookSource",
    "WebhookStaleError",
    "check_signature",
    "parse_webhook",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Yebisu-Signature"
TIMESTAMP_HEADER = "X-Yebisu-Timestamp"
MAX_BODY = 64 * 1024
EVENTS = ("ringing", "answered", "ended", "missed", "dialing")


class WebhookError(ValueError):
    """The body is not a valid webhook event (HTTP 400); the message names the field."""


class WebhookAuthError(WebhookError):
    """Missing or wrong signature or timestamp (HTTP 401)."""


class WebhookStaleError(WebhookAuthError):
    """A correctly signed request whose timestamp is outside the tolerance (HTTP 401)."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes, timestamp: int | str) -> str:
    """Return the signature header value for ``body`` sent with ``timestamp`` (Unix seconds):
    ``sha256=<hex HMAC-SHA256(secret, "{timestamp}." + body)>``."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def _timestamp(value: str | None) -> int | None:
    text = (value or "").strip()
    if not (0 < len(text) <= 12 and text.isascii() and text.isdigit()):
        return None
    return int(text)


def verify_signature(
    secret: str | bytes, body: bytes, header_value: str | None, timestamp: str | None
) -> bool:
    """True when ``header_value`` is ``sha256=<hex>`` of HMAC-SHA256(secret, "{timestamp}." +
    body) and ``timestamp`` is Unix seconds in ASCII digits (its age is not checked here).

    Constant-time comparison; an empty secret never verifies.
    """
    ts = _timestamp(timestamp)
    if not secret or not header_value or ts is None:
        return False
    value = header_value.strip()
    if not value.lower().startswith("sha256=") or not value.isascii():
        return False
    expected = sign(secret, body, ts)
    return hmac.compare_digest(expected.encode("ascii"), ("sha256=" + value[7:].lower()).encode())


def check_signature(
    secret: str | bytes,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    tolerance_s: float,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookAuthError` unless the signature over timestamp and body is right,
    :class:`WebhookStaleError` when the timestamp is more than ``tolerance_s`` from ``now``
    (Unix seconds, default the clock)."""
    if not verify_signature(secret, body, signature, timestamp):
        raise WebhookAuthError(
            f"{SIGNATURE_HEADER} / {TIMESTAMP_HEADER}: missing or wrong signature"
        )
    ts = _timestamp(timestamp)
    assert ts is not None
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance_s:
        raise WebhookStaleError(f"{TIMESTAMP_HEADER}: more than {tolerance_s:g} s off our clock")


def _str(data: Mapping[str, Any], key: str, *, required: bool = False, limit: int = 128) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise WebhookError(f"{key}: required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WebhookError(f"{key}: must be a string")
    text = str(value).strip()
    if required and not text:
        raise WebhookError(f"{key}: required")
    if len(text) > limit:
        raise WebhookError(f"{key}: longer than {limit} characters")
    return text


def _at(data: Mapping[str, Any]) -> datetime:
    value = data.get("at")
    if value is None:
        return utcnow()
    if not isinstance(value, str):
        raise WebhookError("at: must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WebhookError("at: not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise WebhookError("at: needs a UTC offset (e.g. +09:00 or Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise WebhookError("at: out of range") from None


def parse_webhook(
    source_name: str, line: str, body_json: Mapping[str, Any] | bytes | str
) -> list[CallEvent]:
    """Turn one webhook body into call events; raises :class:`WebhookError`."""
    if isinstance(body_json, bytes | str):
        try:
            body_json = json.loads(body_json)
        except (ValueError, UnicodeDecodeError):
            raise WebhookError("body: not JSON") from None
        except RecursionError:
            raise WebhookError("body: nested too deeply") from None
    if not isinstance(body_json, Mapping):
        raise WebhookError("body: must be a JSON object")
    data = body_json
    event = _str(data, "event", required=True)
    if event not in EVENTS:
        raise WebhookError(f"event: must be one of {', '.join(EVENTS)}")
    base: dict[str, Any] = {
        "source": source_name,
        "call_id": _str(data, "call_id", required=True),
        "line": _str(data, "line") or line,
        "at": _at(data),
    }
    extension = _str(data, "extension", limit=32) or None
    if event == "ringing":
        privacy = data.get("privacy", False)
        if not isinstance(privacy, bool):
            raise WebhookError("privacy: must be true or false")
        raw = _str(data, "from", limit=64)
        if privacy:
            return [
                CallRinging(**base, extension=extension, caller_raw="anonymous", withheld="private")
            ]
        caller = normalise_caller(raw)
        name = _str(data, "caller_name", limit=64)
        return [
            CallRinging(
                **base,
                extension=extension,
                caller_raw=raw,
                number=caller.number_e164,
                withheld=caller.withheld,
                caller_name=name,
            )
        ]
    if event == "answered":
        return [CallAnswered(**base, extension=extension)]
    if event == "dialing":
        return [OutboundDialing(**base, extension=extension, number=_str(data, "to", limit=64))]
    answered = data.get("answered", False)
    if not isinstance(answered, bool):
        raise WebhookError("answered: must be true or false")
    reason = _str(data, "reason", limit=64) or ("missed" if event == "missed" else "hangup")
    return [CallEnded(**base, answered=answered and event == "ended", reason=reason)]


class WebhookSource(Source):
    """Events posted by a cloud PBX (``kind = "webhook"``); the app's route feeds it."""

    kind = "webhook"

    def __init__(self, config: WebhookSourceConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self._emit: Emit | None = None

    async def run(self, emit: Emit) -> None:
        """Accept posts until cancelled."""
        self._emit = emit
        self.mark_up()
        try:
            await asyncio.Event().wait()
        finally:
            self._emit = None

    def check(
        self,
        body: bytes,
        signature: str | None,
        timestamp: str | None,
        *,
        now: float | None = None,
    ) -> list[CallEvent]:
        """Verify and parse a post without emitting; raises :class:`WebhookError`."""
        if len(body) > MAX_BODY:
            raise WebhookError("body: too large")
        check_signature(
            self.cfg.secret, body, signature, timestamp, tolerance_s=self.cfg.tolerance_s, now=now
        )
        return parse_webhook(self.name, self.line, body)

    async def receive(
        self, body: bytes, signature: str | None, timestamp: str | None
    ) -> list[CallEvent]:
        """Verify, parse and emit a post; returns the events (raises :class:`WebhookError`)."""
        events = self.check(body, signature, timestamp)
        emit = self._emit
        if emit is None:
            raise WebhookError("source is not running")
        for event in events:
            await emit(event)
        return events
