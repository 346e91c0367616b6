"""Call events: what every source emits and what the app consumes.

Events are frozen dataclasses. ``to_dict()`` / :func:`event_from_dict` give a JSON-safe
round trip (with a ``type`` tag) used when events travel through Redis.

Times are timezone-aware UTC ``datetime`` values.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

__all__ = [
    "ANSWERED_ELSEWHERE",
    "WITHHELD_CODES",
    "WITHHELD_LABELS",
    "CallAnswered",
    "CallEnded",
    "CallEvent",
    "CallRinging",
    "OutboundDialing",
    "event_from_dict",
    "event_from_json",
    "is_stale",
    "utcnow",
]

#: Why a caller's number is not known, with the label shown to operators.
WITHHELD_LABELS: dict[str, str] = {
    "private": "非通知",
    "out_of_area": "表示圏外",
    "payphone": "公衆電話",
    "error": "受信エラー",
    "unavailable": "通知不可",
}
WITHHELD_CODES: frozenset[str] = frozenset(WITHHELD_LABELS)

#: ``CallEnded.reason`` of a call answered by a phone the source does not know.
ANSWERED_ELSEWHERE = "answered_elsewhere"


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """Base of every call event.

    ``source`` is the configured source name, ``call_id`` is unique within that source (the
    PBX's id where there is one), ``line`` is the configured line of the source.
    """

    type: ClassVar[str] = "event"

    source: str
    call_id: str
    line: str
    at: datetime = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict with a ``type`` tag; inverse of :func:`event_from_dict`."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def to_json(self) -> str:
        """Return the event as compact JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CallEvent:
        """Build the right event class from a dict made by :meth:`to_dict`."""
        return event_from_dict(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging(CallEvent):
    """A call is ringing.

    ``number`` is E.164 (``+81312345678``) or ``""``; when ``""``, ``withheld`` is ``""``
    (number present but not a valid phone number; see ``caller_raw``) or a key of
    :data:`WITHHELD_LABELS`. ``extension`` is ``None`` when the source cannot tell which
    extension rings (modem, Number Display); some sources (AMI ring groups and queues) emit one
    ringing event per ringing extension with the same ``call_id``.
    """

    type: ClassVar[str] = "ringing"

    extension: str | None = None
    caller_raw: str = ""
    number: str = ""
    withheld: str = ""
    caller_name: str = ""
    direction: str = "in"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(CallEvent):
    """The call was answered; ``extension`` is ``None`` when answered somewhere unknown."""

    type: ClassVar[str] = "answered"

    extension: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(CallEvent):
    """The call is over. ``answered=False`` means missed/abandoned.

    ``reason`` is a short code: ``hangup``, ``cancelled``, ``ring_stopped``, ``bye``,
    ``busy``, ``originate_failed``, ``dial_failed``, :data:`ANSWERED_ELSEWHERE` or a PBX
    cause text.

    ``answered=True, reason=ANSWERED_ELSEWHERE``: the source saw the call answered by a phone
    it does not know (SIP ``CANCEL`` with ``Reason: SIP;cause=200`` "Call completed
    elsewhere") and will hear nothing more about it. Consumers end a call nobody of theirs
    took (answered elsewhere: not missed) and keep one their operator took.
    """

    type: ClassVar[str] = "ended"

    answered: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundDialing(CallEvent):
    """Click-to-dial was started: ``extension`` is being connected to ``number``."""

    type: ClassVar[str] = "dialing"

    extension: str | None = None
    number: str = ""


EVENT_TYPES: dict[str, type[CallEvent]] = {
    cls.type: cls for cls in (CallRinging, CallAnswered, CallEnded, OutboundDialing)
}


def event_from_dict(data: dict[str, Any]) -> CallEvent:
    """Build an event from a dict made by ``to_dict()``.

    Raises ``ValueError`` on an unknown type or missing/unknown fields.
    """
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "type":
            continue
        if key not in names:
            raise ValueError(f"{kind}: unknown field {key!r}")
        kwargs[key] = value
    at = kwargs.get("at")
    if isinstance(at, str):
        parsed = datetime.fromisoformat(at)
        kwargs["at"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{kind}: {exc}") from None


def event_from_json(text: str | bytes) -> CallEvent:
    """Parse JSON made by ``to_json()``."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("event JSON must be an object")
    return event_from_dict(data)


def is_stale(event: CallEvent, max_age_s: float, now: datetime | None = None) -> bool:
    """Return True when ``event`` is a ringing event older than ``max_age_s`` seconds.

    Consumers drop stale ringing events (e.g. buffered in Redis while the app was away) so an
    operator never gets a pop for a call that stopped ringing long ago. Answered/ended events
    are never stale: they only close state.
    """
    if not isinstance(event, CallRinging):
        return False
    now = now or utcnow()
    return (now - event.at).total_seconds() > max_age_s
