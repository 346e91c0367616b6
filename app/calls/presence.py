"""Operator presence (C6): state and the extension bound at log-in."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.models import PRESENCE_LABELS, Presence
from app.db import utcnow

SELECTABLE = ("available", "after_call", "away")


async def set_presence(
    session: AsyncSession,
    *,
    staff_id: int,
    state: str,
    extension: str | None = None,
    line: str | None = None,
) -> Presence:
    """Set an operator's state (and, at log-in, the extension and line)."""
    if state not in PRESENCE_LABELS:
        raise ValueError(f"unknown presence state {state!r}")
    presence = await session.get(Presence, staff_id)
    if presence is None:
        presence = Presence(staff_id=staff_id, extension=extension or "", line=line or "main")
        session.add(presence)
    if extension is not None:
        presence.extension = extension
    if line is not None:
        presence.line = line
    if presence.state != state:
        presence.state = state
        presence.since = utcnow()
    await session.flush()
    return presence


async def get_presence(session: AsyncSession, *, staff_id: int) -> Presence | None:
    return await session.get(Presence, staff_id)


_BY_EXTENSION_SQL = text(
    "SELECT staff_id FROM presence WHERE extension = :extension AND state <> 'offline' "
    "ORDER BY staff_id"
)
_BY_LINE_SQL = text(
    "SELECT staff_id FROM presence WHERE line = :line AND state = 'available' ORDER BY staff_id"
)


async def targets_for(session: AsyncSession, *, extension: str | None, line: str) -> list[int]:
    """Who a ringing call pops for: the operator of the ringing extension, or, when the source
    cannot tell the extension, every available operator of the line."""
    if extension:
        rows = await session.scalars(_BY_EXTENSION_SQL, {"extension": extension})
    else:
        rows = await session.scalars(_BY_LINE_SQL, {"line": line})
    return list(rows.all())
