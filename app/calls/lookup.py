"""The ringing call's look-up on PostgreSQL, on connections of its own.

A pop waits for one statement: whom the call rings for and who is calling. On the pooled
session that statement comes after a pool checkout, a ``BEGIN`` round trip and SQLAlchemy's
statement layer. :class:`RingLookup` keeps a few autocommit psycopg connections open for that
one statement (prepared on each connection at its first use), so the look-up is a single round
trip. It never makes a call wait: when every connection is busy (calls ringing at the same
moment), not yet open, or lost, :meth:`RingLookup.fetch` raises :class:`LookupUnavailable` and
the caller uses its session as before; a lost connection is reopened in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.engine import make_url

__all__ = ["LookupUnavailable", "RingLookup", "psycopg_dsn"]

log = logging.getLogger("yebisu.cti")

RETRY_S = 5.0
# How the connections show in pg_stat_activity.
APPLICATION_NAME = "yebisu-ring-lookup"


class LookupUnavailable(Exception):
    """No dedicated connection can run the look-up now: use the session."""


def psycopg_dsn(database_url: str) -> str | None:
    """The libpq connection string of a ``postgresql+psycopg://`` URL (else ``None``)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or url.get_driver_name() not in ("psycopg", ""):
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class RingLookup:
    """``size`` autocommit connections for one read-only statement (see the module doc)."""

    def __init__(self, dsn: str, statement: str, *, size: int = 2) -> None:
        self.dsn = dsn
        self.statement = statement
        self.size = size
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._open = 0
        self._reopening: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Open the connections; a database that is down now is retried in the background."""
        self._closed = False
        await self._fill()

    async def _fill(self) -> None:
        while not self._closed and self._open < self.size:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn,
                    autocommit=True,
                    prepare_threshold=0,
                    row_factory=namedtuple_row,
                    application_name=APPLICATION_NAME,
                )
            except psycopg.Error as exc:
                log.warning("ring look-up connection failed (%s); the session is used", exc)
                self._schedule_reopen()
                return
            self._open += 1
            self._idle.append(conn)

    def _schedule_reopen(self) -> None:
        if self._closed or (self._reopening is not None and not self._reopening.done()):
            return

        async def reopen() -> None:
            await asyncio.sleep(RETRY_S)
            await self._fill()

        self._reopening = asyncio.get_running_loop().create_task(reopen())

    async def fetch(self, params: dict[str, Any]) -> Any:
        """The statement's first row (``None`` when it returns none)."""
        if not self._idle:
            raise LookupUnavailable
        conn = self._idle.pop()
        try:
            cur = await conn.execute(self.statement, params)
            row = await cur.fetchone()
        except BaseException as exc:
            self._open -= 1
            with contextlib.suppress(Exception):
                await conn.close()
            self._schedule_reopen()
            if isinstance(exc, psycopg.Error):
                log.warning("ring look-up connection lost (%s); reopening", exc)
                raise LookupUnavailable from exc
            raise
        if self._closed:
            await conn.close()
            self._open -= 1
        else:
            self._idle.append(conn)
        return row

    async def stop(self) -> None:
        """Close every connection (a look-up in flight closes its own when it ends)."""
        self._closed = True
        if self._reopening is not None:
            self._reopening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopening
        while self._idle:
            conn = self._idle.pop()
            self._open -= 1
            with contextlib.suppress(Exception):
                await conn.close()
