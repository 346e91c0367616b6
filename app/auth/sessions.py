"""Server-side sessions.

The cookie carries only a random id; the ``sessions`` table holds its SHA-256 (a copy of the
table gives no live cookie), the staff member logged in and the session's data (CSRF token,
outbound dial keys…). :class:`SessionMiddleware` reads the row once per request (one
primary-key look-up, joined to the staff member's 有効, role and forced password change) and
puts the data in ``scope["session"]`` as a plain dict, so ``request.session`` works as with
Starlette's cookie sessions. The row is written only when the dict changed, or at most once a
minute to note the visit (idle timeout); an anonymous visitor gets a row only when something
is stored (the log-in page's CSRF token).

A session ends at log-out, after ``server.session_idle_s`` without a request, after
``server.session_max_age_s`` however busy, and at once on every app process when the staff
member is retired, changes role or password (:func:`end_sessions`): the rows are deleted in
the caller's transaction, and after its commit the member's websockets are closed (code 4401)
through the hub. Expired rows are deleted by the middleware after a response, at most once
every :data:`PURGE_EVERY_S` per process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Delete, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from app.auth.models import Staff, UserSession
from app.db import utcnow

log = logging.getLogger("yebisu.sessions")

COOKIE = "yebisu_session"
# An anonymous session (the log-in page's CSRF token) lasts at most this long.
ANON_TTL_S = 2 * 3600
# A visit is noted (last_seen_at) at most this often: no write per request.
TOUCH_S = 60.0
# Paths that never use the session (no look-up for them).
NO_SESSION_PREFIXES = ("/static/", "/healthz", "/cti/webhook/", "/cti/simulate")
# session.info key: the staff members whose websockets close once the transaction commits.
CLOSE_AFTER_COMMIT = "yebisu.close_sockets"
# Expired sessions are deleted after a response at most this often per app process (every
# cookie-less visit of the log-in page makes a row: they must not pile up).
PURGE_EVERY_S = 600.0
STATE_KEY = "yebisu.session_state"


def hash_id(raw: str) -> str:
    """The stored form of a session id."""
    return hashlib.sha256(raw.encode("ascii", "replace")).hexdigest()


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class SessionState:
    """What the middleware knows of this request's session (``scope[STATE_KEY]``)."""

    id_hash: str | None = None  # the loaded row; None: no (valid) session yet
    snapshot: str = "{}"
    cookie_sent: bool = False  # the browser sent a cookie (valid or not)
    rotate: bool = False
    last_seen_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    staff_id: int | None = None
    staff_active: bool = False
    staff_role: str = ""
    must_change_password: bool = False


def session_state(conn: HTTPConnection) -> SessionState:
    """This request's session state (an empty one outside :class:`SessionMiddleware`)."""
    state = conn.scope.get(STATE_KEY)
    return state if isinstance(state, SessionState) else SessionState()


def rotate_session(conn: HTTPConnection) -> None:
    """Give this session a new id when the response is sent (log-in: session fixation)."""
    state = conn.scope.get(STATE_KEY)
    if isinstance(state, SessionState):
        state.rotate = True


def _valid(
    now: dt.datetime,
    *,
    last_seen_at: dt.datetime,
    expires_at: dt.datetime,
    idle_s: int,
) -> bool:
    return now < expires_at and now - last_seen_at < dt.timedelta(seconds=idle_s)


async def load_session(
    engine: AsyncEngine, id_hash: str, *, idle_s: int
) -> tuple[SessionState, dict[str, Any]] | None:
    """The session row ``id_hash`` with its staff member's state, or None when there is none
    or it has expired (idle or absolute)."""
    stmt = (
        select(
            UserSession.staff_id,
            UserSession.data,
            UserSession.last_seen_at,
            UserSession.expires_at,
            Staff.active,
            Staff.role,
            Staff.must_change_password,
        )
        .outerjoin(Staff, Staff.id == UserSession.staff_id)
        .where(UserSession.id_hash == id_hash)
    )
    async with engine.connect() as conn:
        # One round trip: no BEGIN before the look-up and no ROLLBACK after it.
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        row = (await auto.execute(stmt)).first()
    if row is None:
        return None
    if not _valid(
        utcnow(), last_seen_at=row.last_seen_at, expires_at=row.expires_at, idle_s=idle_s
    ):
        return None
    data = dict(row.data or {})
    state = SessionState(
        id_hash=id_hash,
        snapshot=_dump(data),
        cookie_sent=True,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        staff_id=row.staff_id,
        staff_active=bool(row.active),
        staff_role=str(row.role or ""),
        must_change_password=bool(row.must_change_password),
    )
    return state, data


class SessionMiddleware:
    """Server-side sessions in the ``sessions`` table (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: AsyncEngine,
        idle_s: int,
        max_age_s: int,
        https_only: bool = False,
    ) -> None:
        self.app = app
        self.engine = engine
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.https_only = https_only
        self._purge_due = 0.0  # time.monotonic() of the next purge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(NO_SESSION_PREFIXES):
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        raw = HTTPConnection(scope).cookies.get(COOKIE, "")
        state = SessionState(cookie_sent=bool(raw))
        data: dict[str, Any] = {}
        if raw and len(raw) <= 128:
            loaded = await load_session(self.engine, hash_id(raw), idle_s=self.idle_s)
            if loaded is not None:
                state, data = loaded
        scope["session"] = data
        scope[STATE_KEY] = state
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = await self._save(scope, state)
                if cookie is not None:
                    MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_wrapper)
        await self._purge_if_due()

    async def _purge_if_due(self) -> None:
        """Delete expired sessions when :data:`PURGE_EVERY_S` has passed since the last time
        (the response is already sent; a failure is logged and tried again next time)."""
        now = time.monotonic()
        if now < self._purge_due:
            return
        self._purge_due = now + PURGE_EVERY_S
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(_expired_stmt(idle_s=self.idle_s))
            purged = int(getattr(result, "rowcount", 0) or 0)
            if purged:
                log.info("purged %d expired sessions", purged)
        except Exception:
            log.warning("could not purge expired sessions", exc_info=True)

    def _cookie(self, value: str, max_age: int) -> str:
        parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
        if self.https_only:
            parts.append("Secure")
        return "; ".join(parts)

    async def _save(self, scope: Scope, state: SessionState) -> str | None:
        """Write what changed; returns the Set-Cookie value, if any."""
        data: dict[str, Any] = scope["session"]
        now = utcnow()
        dumped = _dump(data) if data else "{}"
        if state.rotate or (state.id_hash is None and data):
            async with self.engine.begin() as conn:
                if state.id_hash is not None:
                    await conn.execute(
                        delete(UserSession).where(UserSession.id_hash == state.id_hash)
                    )
                if not data:
                    return self._cookie("", 0)
                raw = secrets.token_urlsafe(32)
                staff_id = _staff_id(data)
                ttl = self.max_age_s if staff_id is not None else min(ANON_TTL_S, self.max_age_s)
                conn_info = HTTPConnection(scope)
                await conn.execute(
                    insert(UserSession).values(
                        id_hash=hash_id(raw),
                        staff_id=staff_id,
                        data=data,
                        created_at=now,
                        last_seen_at=now,
                        expires_at=now + dt.timedelta(seconds=ttl),
                        ip=(conn_info.client.host if conn_info.client else "")[:64],
                        user_agent=conn_info.headers.get("user-agent", "")[:255],
                    )
                )
            return self._cookie(raw, ttl)
        if state.id_hash is None:
            # A cookie naming no live session: forget it.
            return self._cookie("", 0) if state.cookie_sent else None
        if not data:
            async with self.engine.begin() as conn:
                await conn.execute(delete(UserSession).where(UserSession.id_hash == state.id_hash))
            return self._cookie("", 0)
        if dumped != state.snapshot:
            async with self.engine.begin() as conn:
                # A session ended meanwhile (revoked) stays ended: no row is made again.
                await conn.execute(
                    update(UserSession)
                    .where(UserSession.id_hash == state.id_hash)
                    .values(data=data, staff_id=_staff_id(data), last_seen_at=now)
                )
            return None
        if state.last_seen_at is not None and (now - state.last_seen_at).total_seconds() >= min(
            TOUCH_S, self.idle_s / 10
        ):
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(UserSession)
                    .where(UserSession.id_hash == state.id_hash)
                    .values(last_seen_at=now)
                )
        return None


def _staff_id(data: dict[str, Any]) -> int | None:
    staff = data.get("staff")
    if isinstance(staff, dict) and isinstance(staff.get("id"), int):
        return int(staff["id"])
    return None


# --- revocation ---------------------------------------------------------------------------------


async def end_sessions(session: AsyncSession, *, staff_id: int, keep: str | None = None) -> int:
    """End every session of the staff member (but the one whose id hash is ``keep``) in the
    caller's transaction; returns how many. Ending all of them also sets their presence
    off-line (no more pops). Once the transaction commits in a request, their open websockets
    (but ``keep``'s) are closed on every app process (:func:`close_sockets_after_commit`)."""
    from app.calls.models import Presence

    stmt = delete(UserSession).where(UserSession.staff_id == staff_id)
    if keep:
        stmt = stmt.where(UserSession.id_hash != keep)
    result = await session.execute(stmt)
    if not keep:
        await session.execute(
            update(Presence)
            .where(Presence.staff_id == staff_id, Presence.state != "offline")
            .values(state="offline", since=utcnow())
        )
    pending: list[tuple[int, str]] = session.info.setdefault(CLOSE_AFTER_COMMIT, [])
    pending.append((staff_id, keep or ""))
    return int(getattr(result, "rowcount", 0) or 0)


async def close_sockets_after_commit(session: AsyncSession, hub: Any) -> None:
    """Close the websockets of the staff members whose sessions :func:`end_sessions` ended in
    this (now committed) transaction."""
    pending: list[tuple[int, str]] = session.info.pop(CLOSE_AFTER_COMMIT, [])
    for staff_id, keep in pending:
        try:
            await hub.close_staff(staff_id, keep_session=keep)
        except Exception:
            log.warning("could not close the websockets of staff %s", staff_id, exc_info=True)


def _expired_stmt(*, idle_s: int) -> Delete:
    now = utcnow()
    return delete(UserSession).where(
        or_(
            UserSession.expires_at <= now,
            UserSession.last_seen_at <= now - dt.timedelta(seconds=idle_s),
        )
    )


async def purge_expired(session: AsyncSession, *, idle_s: int) -> int:
    """Delete the sessions past their absolute or idle end; returns how many."""
    result = await session.execute(_expired_stmt(idle_s=idle_s))
    return int(getattr(result, "rowcount", 0) or 0)


async def live_staff_ids(session: AsyncSession, staff_ids: list[int], *, idle_s: int) -> set[int]:
    """Which of these staff members have a live (unexpired) session."""
    if not staff_ids:
        return set()
    now = utcnow()
    rows = await session.scalars(
        select(UserSession.staff_id)
        .where(
            UserSession.staff_id.in_(staff_ids),
            UserSession.expires_at > now,
            UserSession.last_seen_at > now - dt.timedelta(seconds=idle_s),
        )
        .distinct()
    )
    return {int(sid) for sid in rows.all() if sid is not None}


async def set_session_extension(session: AsyncSession, *, staff_id: int, extension: str) -> None:
    """Show ``extension`` (empty: none) in the open sessions of this staff member."""
    rows = await session.scalars(select(UserSession).where(UserSession.staff_id == staff_id))
    for row in rows.all():
        data = dict(row.data or {})
        staff = data.get("staff")
        if isinstance(staff, dict):
            data["staff"] = {**staff, "extension": extension}
            row.data = data


async def watch_socket(ws: WebSocket, engine: AsyncEngine, *, idle_s: int) -> None:
    """Receive from an open websocket until the tab goes; every minute (or sooner with a short
    idle timeout) check that its session is still live, and close it (4401) when not. Sessions
    ended by revocation close at once through the hub; this catches expiry."""
    from app.hub import CLOSE_SESSION_ENDED

    state = session_state(ws)
    every = max(0.2, min(TOUCH_S, idle_s / 4))
    while True:
        try:
            await asyncio.wait_for(ws.receive_text(), timeout=every)
            continue
        except TimeoutError:
            pass
        loaded = None
        if state.id_hash is not None:
            loaded = await load_session(engine, state.id_hash, idle_s=idle_s)
        if loaded is None or not loaded[0].staff_active:
            await ws.close(code=CLOSE_SESSION_ENDED, reason="session ended")
            return
