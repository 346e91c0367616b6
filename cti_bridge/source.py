"""The one interface every call source implements.

A source's :meth:`Source.run` opens its device/socket, calls :meth:`Source.mark_up` once it is
connected, passes every event to ``emit`` and returns or raises when the connection is lost.
The :class:`~cti_bridge.supervisor.Supervisor` calls ``run`` again with back-off.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar

from cti_bridge.config import SourceConfig
from cti_bridge.events import CallEvent

__all__ = ["DialError", "Emit", "Source", "SourceError"]

Emit = Callable[[CallEvent], Awaitable[None]]


class SourceError(Exception):
    """A source failed (device missing, login refused, connection lost …)."""


class DialError(SourceError):
    """Click-to-dial could not be started; the message says why (English, for logs)."""


class Source(ABC):
    """Base class of call sources.

    Subclasses set ``kind`` and implement :meth:`run`; originate-capable ones set
    ``can_dial = True`` and implement :meth:`dial`.
    """

    kind: ClassVar[str] = ""
    can_dial: ClassVar[bool] = False

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self._up_listener: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        """The configured source name (``CallEvent.source``)."""
        return self.config.name or self.kind

    @property
    def line(self) -> str:
        """The configured line (``CallEvent.line``)."""
        return self.config.line

    def set_up_listener(self, listener: Callable[[], None] | None) -> None:
        """Register the callback :meth:`mark_up` calls (used by the supervisor)."""
        self._up_listener = listener

    def mark_up(self) -> None:
        """Tell the supervisor the source is connected and reading."""
        if self._up_listener is not None:
            self._up_listener()

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Connect, emit events until the connection is lost, then return or raise."""

    async def dial(self, extension: str | None, number: str, *, call_id: str | None = None) -> str:
        """Start an outbound call from ``extension`` to ``number``; return the call id.

        Emits :class:`~cti_bridge.events.OutboundDialing`. Raises :class:`DialError`.
        """
        raise DialError(f"source {self.name!r} ({self.kind}) cannot dial")
