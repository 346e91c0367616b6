"""Tell the live boards that something they count changed.

The board is rendered once per change (changes arriving together are coalesced) and published
on the hub's ``board`` topic; today's responses get a one-line signal on ``responses`` that
makes each open page reload its own filtered list. Nothing here runs on the pop path: CTI
events poke the notifier after their fragments were delivered.

Features do not call the board: they publish events (:mod:`app.events`) after which the board
refreshes; :func:`subscribe_board` maps each event to what it changes. Only the CTI runtime
(the composition side, which owns the notifier) pokes it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import transaction
from app.events import (
    CallChanged,
    Event,
    EventBus,
    OrderPlaced,
    OutboundListCreated,
    OutboundResultSaved,
    PresenceChanged,
    ResponseSaved,
)
from app.hub import Hub

if TYPE_CHECKING:
    from app.board.service import Board

log = logging.getLogger("yebisu.board")

BOARD_TOPIC = "board"
RESPONSES_TOPIC = "responses"
# Changes within this window are sent as one board update (at most ten renders a second,
# however busy the lines are).
COALESCE_S = 0.1
# The whole board is pushed at least this often while changes come (else only what changed).
RESYNC_S = 30.0
# Without any event the board is still checked this often: a call-back or an open response
# that passes its deadline during a quiet spell shows up as an alert by itself.
TICK_S = 30.0
RESPONSES_SIGNAL = (
    '<div id="today-refresh" hx-swap-oob="true" hx-get="/responses/today" '
    'hx-include="#today-filters" hx-target="#today-list" hx-select="#today-list" '
    'hx-swap="outerHTML" hx-trigger="load"></div>'
)


class BoardNotifier:
    """Renders and publishes the board after changes, at most one render at a time."""

    def __init__(
        self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], hub: Hub
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.hub = hub
        self._kinds: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, str] | None = None  # the pieces last published
        self._last_full = 0.0
        self._ticker: asyncio.Task[None] | None = None

    def start(self, *, tick_s: float = TICK_S) -> None:
        """Check the board every ``tick_s`` seconds too (deadlines pass without events)."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(tick_s)
                self.poke("tick")

        if self._ticker is None:
            self._ticker = asyncio.create_task(tick(), name="board-tick")

    def poke(self, kind: str) -> None:
        """Something of ``kind`` changed (committed): refresh soon."""
        self._kinds.add(kind)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="board-refresh")

    async def _run(self) -> None:
        while self._kinds:
            await asyncio.sleep(COALESCE_S)
            kinds, self._kinds = self._kinds, set()
            try:
                await self.refresh(kinds)
            except Exception:
                log.exception("board refresh failed")

    async def refresh(self, kinds: set[str]) -> None:
        from app.board.service import board

        if await self.hub.has_subscribers(BOARD_TOPIC):
            async with transaction(self.sessionmaker) as session:
                data = await board(session, settings=self.settings)
            html = self.changes(data)
            if html:
                await self.hub.publish(BOARD_TOPIC, html)
        else:
            self._last = None
        if "response" in kinds and await self.hub.has_subscribers(RESPONSES_TOPIC):
            await self.hub.publish(RESPONSES_TOPIC, RESPONSES_SIGNAL)

    def changes(self, data: Board) -> str:
        """What to push: the pieces that changed since the last push (a changed operator is
        one row), or the whole board now and then (a board published by another process in
        between cannot leave a piece stale for long)."""
        from app.board.service import render_board, render_operators, render_pieces

        pieces = render_pieces(data)
        now = time.monotonic()
        last = self._last if now - self._last_full < RESYNC_S else None
        self._last = pieces
        if last is None:
            self._last_full = now
            return render_board(data, oob=True)
        rows = {k for k in pieces if k.startswith("operator-")}
        changed = [
            html
            for key, html in pieces.items()
            if last.get(key) != html and not key.startswith("operator-")
        ]
        if rows != {k for k in last if k.startswith("operator-")}:
            changed.append(render_operators(data))
        else:
            changed += [pieces[k] for k in sorted(rows) if last.get(k) != pieces[k]]
        return "".join(changed)

    async def stop(self) -> None:
        for task in (self._ticker, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._ticker = None


# What each event changes on the board ("response" also reloads 本日の対応's open lists).
BOARD_KINDS: dict[type[Event], str] = {
    OrderPlaced: "order",
    ResponseSaved: "response",
    CallChanged: "call",
    PresenceChanged: "presence",
    OutboundListCreated: "outbound",
    OutboundResultSaved: "outbound",
}


def subscribe_board(bus: EventBus, notifier: BoardNotifier) -> Callable[[], None]:
    """Let the board hear of every committed event that changes what it counts (at app
    start-up); returns the function that unsubscribes it again (at shutdown)."""

    def poke_for(kind: str) -> Callable[[Event], None]:
        return lambda _event: notifier.poke(kind)

    offs = [bus.subscribe(event, poke_for(kind)) for event, kind in BOARD_KINDS.items()]

    def unsubscribe() -> None:
        for off in offs:
            off()

    return unsubscribe
