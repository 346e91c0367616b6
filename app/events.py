"""What features tell each other, and the small in-process bus that carries it.

A feature that changed something others care about *publishes* an event on its database
session (:func:`publish`): the event waits in ``session.info`` and is handed to the
subscribers only after that session's transaction committed — by ``DBSessionMiddleware`` for a
request, by :func:`app.db.transaction` for other code (both call :func:`dispatch_committed`). A
rolled-back transaction drops its events. A feature never imports its subscribers: the board
(and later 本日の対応, ranks, notifications) subscribe at start-up, in ``app.main``.

Subscribers are plain callables run on the event loop right after the commit, before the
response starts: they must be quick and must not raise (schedule the work, e.g. the board's
coalesced refresh, rather than do it). One that raises is logged and the others still run.

Call events of the CTI bridge (ringing, answered, ended) are ``cti_bridge.events``; the CTI
runtime applies them and pokes the board itself (see docs/architecture.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("yebisu.events")

# session.info keys: the bus the session's events go to (set by make_sessionmaker) and the
# events waiting for the commit.
BUS_KEY = "yebisu.events.bus"
PENDING_KEY = "yebisu.events.pending"


# --- the events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of every event: something that happened and was committed."""


@dataclass(frozen=True)
class OrderPlaced(Event):
    """A new order (受注) was written by order entry (not an idempotent repeat)."""

    order_id: int
    customer_id: int


@dataclass(frozen=True)
class ResponseSaved(Event):
    """A response (対応履歴) was written or completed: from the customer monitor, or from the
    call screen for a call (``call_id``)."""

    customer_id: int | None
    call_id: int | None = None


@dataclass(frozen=True)
class CallChanged(Event):
    """An operator changed a call from the screens: took it, chose or registered its
    customer, or finished its call-back (不在着信)."""

    call_id: int


@dataclass(frozen=True)
class PresenceChanged(Event):
    """An operator chose another presence state (受付可, 離席, …)."""

    staff_id: int
    state: str


@dataclass(frozen=True)
class OutboundListCreated(Event):
    """A call list (架電リスト) was made."""

    list_id: int


@dataclass(frozen=True)
class OutboundResultSaved(Event):
    """The result of an outbound call (架電結果) was recorded."""

    entry_id: int


# --- the bus ------------------------------------------------------------------------------------

E = TypeVar("E", bound=Event)
Handler = Callable[[Any], None]


class EventBus:
    """Subscribers by event type; one bus per app (``app.state.events``)."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = {}

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` with every committed event of ``kind`` (subclasses included);
        returns a function that unsubscribes it (at shutdown)."""
        handlers = self._handlers.setdefault(kind, [])
        handlers.append(handler)

        def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def dispatch(self, events: list[Event]) -> None:
        """Hand committed events to their subscribers, in the order they were published."""
        for event in events:
            for kind in type(event).__mro__:
                for handler in list(self._handlers.get(kind, ())):
                    try:
                        handler(event)
                    except Exception:
                        log.exception("event subscriber failed on %s", type(event).__name__)


def publish(session: AsyncSession, event: Event) -> None:
    """Queue ``event`` on the session: its subscribers hear of it after the commit."""
    pending: list[Event] = session.info.setdefault(PENDING_KEY, [])
    pending.append(event)


def dispatch_committed(session: AsyncSession) -> None:
    """After the session committed: hand its queued events to the bus (none without one)."""
    events: list[Event] = session.info.pop(PENDING_KEY, [])
    bus = session.info.get(BUS_KEY)
    if events and isinstance(bus, EventBus):
        bus.dispatch(events)


def drop_pending(session: AsyncSession) -> None:
    """After a rollback: the queued events did not happen."""
    session.info.pop(PENDING_KEY, None)
