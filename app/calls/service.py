"""Calls (C3–C5): from a CTI event to the fragments pushed to operators' screens."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Template
from psycopg.rows import namedtuple_row
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.calls.lookup import LookupUnavailable, RingLookup, psycopg_dsn
from app.calls.models import PRESENCE_LABELS, Call
from app.calls.presence import get_presence, set_presence, targets_for
from app.customers.models import Customer
from app.customers.service import (
    POP_LOOKUP_PG_SELECT,
    CustomerCard,
    PhoneMatch,
    cards_for_match,
    customer_cards,
    find_by_number,
    pop_from_pg_row,
    pop_lookup,
)
from app.db import utcnow
from app.responses.models import Action, Response
from app.templating import templates
from cti_bridge.events import (
    ANSWERED_ELSEWHERE,
    WITHHELD_LABELS,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRinging,
    OutboundDialing,
)
from cti_bridge.numbers import display_national

#: How a call answered by a phone without an operator of ours is shown (board, history).
ELSEWHERE_LABEL = "他で応答"


@dataclass
class Delivery:
    """A fragment for the open tabs of these staff members."""

    staff_ids: list[int]
    html: str


def _template(name: str) -> Template:
    return templates.env.get_template(name)


def caller_label(call: Call) -> str:
    if call.withheld_reason:
        return WITHHELD_LABELS.get(call.withheld_reason, call.withheld_reason)
    return display_national(call.caller_e164) if call.caller_e164 else call.caller_raw


async def _pop_context(
    session: AsyncSession,
    call: Call,
    match: PhoneMatch | None = None,
    cards: list[CustomerCard] | None = None,
) -> dict[str, Any]:
    if match is None:
        match = PhoneMatch("none", [])
        if call.caller_e164:
            match = await find_by_number(session, e164=call.caller_e164)
    if cards is None:
        cards = await cards_for_match(session, match=match)
    if call.customer_id is not None and call.customer_id not in match.customer_ids:
        cards = await customer_cards(session, customer_ids=[call.customer_id])
        match = PhoneMatch("chosen", [call.customer_id])
    return {
        "call": call,
        "key": pop_key(call.source, call.source_call_id),
        "ref": {"source": call.source, "call": call.source_call_id},
        "caller_display": caller_label(call),
        "withheld": call.withheld_reason,
        "match": match.kind,
        "cards": cards,
        "chosen": next((c for c in cards if c.id == call.customer_id), None),
    }


async def render_pop(
    session: AsyncSession,
    call: Call,
    *,
    insert: bool = True,
    match: PhoneMatch | None = None,
    cards: list[CustomerCard] | None = None,
) -> str:
    """The pop-up fragment of ``call`` (an htmx out-of-band swap), rendered once."""
    ctx = await _pop_context(session, call, match, cards)
    return _template("calls/_pop.html").render(**ctx, insert=insert)


async def _presence_update(session: AsyncSession, staff_id: int, state: str) -> Delivery:
    presence = await set_presence(session, staff_id=staff_id, state=state)
    html = _template("calls/_presence.html").render(
        presence=presence, labels=PRESENCE_LABELS, oob=True
    )
    return Delivery([staff_id], html)


def pop_key(source: str, source_call_id: str) -> str:
    """The pop's id in the page: known from the event alone, before the call row exists."""
    return hashlib.blake2b(f"{source}\x1f{source_call_id}".encode(), digest_size=8).hexdigest()


def closing_fragment(source: str, call_id: str) -> str:
    """The fragment that takes a call's pop off every screen it reaches."""
    return f'<div id="pop-{pop_key(source, call_id)}" hx-swap-oob="delete"></div>'


def close_pop(call: Call) -> str:
    return closing_fragment(call.source, call.source_call_id)


_CALL_COLUMNS = (
    "source", "source_call_id", "direction", "line", "extension", "caller_raw", "caller_e164",
    "withheld_reason", "state", "match_kind", "customer_id", "started_at", "targets",
)  # fmt: skip
_CALLS: Table = Call.__table__  # type: ignore[assignment]
_INSERT_CALL = {
    name: make(_CALLS)
    .values({col: bindparam(col, type_=_CALLS.c[col].type) for col in _CALL_COLUMNS})
    .on_conflict_do_nothing(index_elements=["source", "source_call_id"])
    .returning(_CALLS.c.id)
    for name, make in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}  # built once: the ringing path only binds values


Push = Callable[[list[Delivery]], Awaitable[None]]


_RING_PG_SELECT = (
    "SELECT (SELECT array_agg(staff_id ORDER BY staff_id) FROM presence WHERE "
    "(:extension <> '' AND extension = :extension AND state <> 'offline') OR "
    "(:extension = '' AND line = :line AND state = 'available')) AS targets, "
    "(SELECT state FROM calls WHERE source = :source AND source_call_id = :call_id) "
    "AS existing_state, x.* FROM (" + POP_LOOKUP_PG_SELECT + ") x"
)
# psycopg's own parameter style; the statement has no literal "%" and its casts ("::") stay.
_RING_PG_RAW = re.sub(r"(?<!:):(\w+)", r"%(\1)s", _RING_PG_SELECT)


async def _ring_row(
    session: AsyncSession, params: dict[str, Any], lookup: RingLookup | None
) -> Any:
    if lookup is not None:
        with contextlib.suppress(LookupUnavailable):
            return await lookup.fetch(params)
    # The hottest statement of all, straight on the psycopg connection of the session's
    # transaction (SQLAlchemy's async statement layer costs ~0.2 ms a statement here).
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    assert raw is not None
    async with raw.cursor(row_factory=namedtuple_row) as cur:
        await cur.execute(_RING_PG_RAW, params)
        return await cur.fetchone()


def ring_lookup_for(database_url: str) -> RingLookup | None:
    """Dedicated connections for the ringing look-up (PostgreSQL only)."""
    dsn = psycopg_dsn(database_url)
    return RingLookup(dsn, _RING_PG_RAW) if dsn is not None else None


async def _ring_lookup(
    session: AsyncSession,
    event: CallRinging,
    lookup: RingLookup | None = None,
    *,
    check_existing: bool = False,
) -> tuple[list[int], PhoneMatch, list[CustomerCard], str | None]:
    """Who the pop goes to, who is calling, and the state of the call when it is already
    stored (a repeated ringing event). On PostgreSQL, with a number, all come from one
    statement (the usual case is a single round trip, on ``lookup``'s connections when one
    is free)."""
    if event.number and session.get_bind().dialect.name == "postgresql":
        params = {
            "number": event.number,
            "extension": event.extension or "",
            "line": event.line,
            "source": event.source,
            "call_id": event.call_id,
        }
        row = await _ring_row(session, params, lookup)
        targets = list(row.targets or []) if row is not None else []
        existing: str | None = row.existing_state if row is not None else None
        match, cards = await pop_from_pg_row(session, row=row, e164=event.number)
        return targets, match, cards, existing
    targets = await targets_for(session, extension=event.extension, line=event.line)
    existing = None
    if check_existing:
        existing = await session.scalar(
            select(Call.state).where(
                Call.source == event.source, Call.source_call_id == event.call_id
            )
        )
    if not event.number:
        return targets, PhoneMatch("none", []), [], existing
    match, cards = await pop_lookup(session, e164=event.number)
    return targets, match, cards, existing


async def on_ringing(
    session: AsyncSession,
    *,
    event: CallRinging,
    push: Push | None = None,
    lookup: RingLookup | None = None,
) -> list[Delivery]:
    """A ringing call: look the number up across every phone, pick the operators (by
    extension, else every available operator of the line), render the pop once, persist.

    With ``push`` (the first event of a call) the pop goes out before the call's INSERT: its
    page id and buttons name the call by source and call id, so nothing waits for the row.
    """
    targets, match, cards, existing_state = await _ring_lookup(
        session, event, lookup, check_existing=push is not None
    )
    values: dict[str, Any] = {
        "source": event.source,
        "source_call_id": event.call_id,
        "direction": event.direction,
        "line": event.line,
        "extension": event.extension or "",
        "caller_raw": event.caller_raw[:64],
        "caller_e164": event.number,
        "withheld_reason": event.withheld,
        "state": "ringing",
        "match_kind": "many" if len(match.customer_ids) > 1 else match.kind,
        "customer_id": match.customer_ids[0] if len(match.customer_ids) == 1 else None,
        "started_at": event.at,
        "targets": targets,
    }
    pushed = False
    if push is not None and targets and existing_state is None:
        early = Call(id=None, answered_at=None, **values)  # transient: only rendered
        await push([Delivery(targets, await render_pop(session, early, match=match, cards=cards))])
        pushed = True
    new_id = await session.scalar(_INSERT_CALL[session.get_bind().dialect.name], values)
    if new_id is not None:
        if pushed:
            return []
        call = Call(id=new_id, answered_at=None, **values)  # transient: only rendered
        fresh = targets
    else:
        # The same call ringing again, e.g. another extension of a ring group (AMI), or a
        # ringing event repeated (a PBX resending to a restarted or another app process).
        existing = await _find(session, event)
        if existing is None or existing.state != "ringing":
            if not pushed:
                return []
            # The early pop went out for a call already taken or over: close it again (but
            # not on the screen of the operator who owns the call).
            stale = [t for t in targets if existing is None or t != existing.staff_id]
            closing = closing_fragment(event.source, event.call_id)
            return [Delivery(stale, closing)] if stale else []
        call = existing
        fresh = [t for t in targets if t not in call.targets]
        call.targets = sorted({*call.targets, *fresh})
    if not fresh or pushed:
        return []
    return [Delivery(fresh, await render_pop(session, call, match=match, cards=cards))]


async def _find(session: AsyncSession, event: CallEvent) -> Call | None:
    return await session.scalar(
        select(Call).where(Call.source == event.source, Call.source_call_id == event.call_id)
    )


async def on_answered(session: AsyncSession, *, event: CallAnswered) -> list[Delivery]:
    """The PBX says the call was answered: it belongs to that extension's operator."""
    call = await _find(session, event)
    if call is None or call.state not in ("ringing", "answered"):
        return []
    owner: int | None = call.staff_id
    if owner is None and event.extension:
        owners = await targets_for(session, extension=event.extension, line=call.line)
        owner = owners[0] if owners else None
    if call.state == "ringing":
        call.state = "answered"
        call.answered_at = event.at
        if event.extension:
            call.extension = event.extension
        call.staff_id = owner
    return await _after_take(session, call)


async def _after_take(session: AsyncSession, call: Call) -> list[Delivery]:
    deliveries: list[Delivery] = []
    others = [t for t in call.targets if t != call.staff_id]
    if others:
        deliveries.append(Delivery(others, close_pop(call)))
    if call.staff_id is not None:
        deliveries.append(await _presence_update(session, call.staff_id, "on_call"))
        deliveries.append(Delivery([call.staff_id], await render_pop(session, call, insert=False)))
    return deliveries


@dataclass
class TakeResult:
    ok: bool
    call: Call | None
    deliveries: list[Delivery]
    message: str = ""


async def call_by_ref(session: AsyncSession, *, source: str, source_call_id: str) -> Call | None:
    """The call a pop's buttons name (source and the source's call id)."""
    return await session.scalar(
        select(Call).where(Call.source == source, Call.source_call_id == source_call_id)
    )


async def take_call(session: AsyncSession, *, call_id: int, staff_id: int) -> TakeResult:
    """An operator presses 応答: the first one owns the call; the others' pops close."""
    result = await session.execute(
        update(Call)
        .where(Call.id == call_id, Call.state == "ringing", Call.staff_id.is_(None))
        .values(state="answered", staff_id=staff_id, answered_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    call = await session.get(Call, call_id, populate_existing=True)
    if call is None:
        return TakeResult(False, None, [], "この着信は見つかりません。")
    if getattr(result, "rowcount", 0) != 1:
        if call.staff_id == staff_id:
            return TakeResult(True, call, [])
        msg = (
            "この着信は他のオペレータが応答しました。"
            if call.staff_id is not None
            else "この着信は既に終了しています。"
        )
        return TakeResult(False, call, [Delivery([staff_id], close_pop(call))], msg)
    if staff_id not in call.targets:
        call.targets = sorted({*call.targets, staff_id})
    return TakeResult(True, call, await _after_take(session, call))


async def choose_customer(
    session: AsyncSession, *, call_id: int, staff_id: int, customer_id: int
) -> Call | None:
    """The owner of a call picks one of several matching customers (or a new one)."""
    call = await session.get(Call, call_id)
    if call is None or call.staff_id != staff_id:
        return None
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return None
    # A customer merged into another: the call belongs to the surviving record.
    call.customer_id = customer.merged_into_id or customer.id
    await session.flush()
    return call


async def on_ended(session: AsyncSession, *, event: CallEnded) -> list[Delivery]:
    """The call is over: log its duration; an answered call leaves a 対応履歴 to complete,
    an unanswered one goes to the call-back list."""
    if not event.answered:
        # The common case of a call nobody took: one statement.
        missed = (
            await session.execute(
                update(Call)
                .where(
                    Call.source == event.source,
                    Call.source_call_id == event.call_id,
                    Call.state == "ringing",
                )
                .values(state="missed", callback_status="pending", ended_at=event.at)
                .returning(Call.id, Call.targets)
                .execution_options(synchronize_session=False)
            )
        ).first()
        if missed is not None:
            if not missed.targets:
                return []
            return [Delivery(missed.targets, closing_fragment(event.source, event.call_id))]
    call = await _find(session, event)
    if call is None or call.state in ("ended", "missed"):
        return []
    if event.reason == ANSWERED_ELSEWHERE:
        return await _answered_elsewhere(session, call, event)
    call.ended_at = event.at
    deliveries: list[Delivery] = []
    if call.state == "answered" or (event.answered and call.staff_id is not None):
        call.state = "ended"
        start = call.answered_at or call.started_at
        call.duration_s = max(0, int((event.at - start).total_seconds()))
        if call.staff_id is not None:
            deliveries.append(await _presence_update(session, call.staff_id, "after_call"))
        entered = await session.scalar(
            select(Response.id).where(Response.call_id == call.id).limit(1)
        )
        # An inbound call leaves a response to complete; an outbound one is recorded by the
        # work list's result (架電 結果), which becomes the customer's action.
        if entered is None and call.direction == "in":
            session.add(
                Response(
                    customer_id=call.customer_id,
                    call_id=call.id,
                    staff_id=call.staff_id,
                    responded_at=call.answered_at or call.started_at,
                    category="問合せ",
                    channel="電話",
                    status="open",
                )
            )
        if call.customer_id is not None and call.direction == "in":
            session.add(
                Action(
                    customer_id=call.customer_id,
                    kind="call_in" if call.direction == "in" else "call_out",
                    occurred_at=call.started_at,
                    staff_id=call.staff_id,
                    call_id=call.id,
                    content=f"通話 {call.duration_s // 60}分{call.duration_s % 60}秒",
                )
            )
        await session.flush()
        others = [t for t in call.targets if t != call.staff_id]
        if others:
            deliveries.append(Delivery(others, close_pop(call)))
        if call.staff_id is not None:
            deliveries.append(
                Delivery([call.staff_id], await render_pop(session, call, insert=False))
            )
    else:
        call.state = "missed"
        call.callback_status = "pending"
        if call.targets:
            deliveries.append(Delivery(call.targets, close_pop(call)))
    return deliveries


async def _answered_elsewhere(
    session: AsyncSession, call: Call, event: CallEnded
) -> list[Delivery]:
    """A phone the source does not know answered the call (SIP "Call completed elsewhere").

    A call one of our operators took (応答) goes on: nothing changes. A call nobody of ours
    took ends at once as 他で応答 — ``state="ended"`` with ``answered_at`` and no staff, no
    duration (the source never learns when it ends), no call-back and no 対応履歴 to
    complete; a known customer's history gets the call. Every pop of it closes.
    """
    if call.staff_id is not None:
        return []
    call.state = "ended"
    call.answered_at = call.answered_at or event.at
    call.ended_at = event.at
    call.duration_s = None
    call.callback_status = ""
    if call.customer_id is not None and call.direction == "in":
        session.add(
            Action(
                customer_id=call.customer_id,
                kind="call_in",
                occurred_at=call.started_at,
                staff_id=None,
                call_id=call.id,
                content=ELSEWHERE_LABEL,
            )
        )
    await session.flush()
    return [Delivery(call.targets, close_pop(call))] if call.targets else []


def answered_elsewhere(call: Call) -> bool:
    """True for an inbound call answered by a phone without an operator of ours (他で応答)."""
    return (
        call.direction == "in"
        and call.state == "ended"
        and call.staff_id is None
        and call.answered_at is not None
    )


async def on_dialing(session: AsyncSession, *, event: OutboundDialing) -> list[Delivery]:
    """Click-to-dial started by a source: logged as an outbound call."""
    existing = await _find(session, event)
    if existing is not None:
        return []
    owners = await targets_for(session, extension=event.extension, line=event.line)
    session.add(
        Call(
            source=event.source,
            source_call_id=event.call_id,
            direction="out",
            line=event.line,
            extension=event.extension or "",
            caller_e164=event.number,
            state="answered",
            staff_id=owners[0] if owners else None,
            started_at=event.at,
            answered_at=event.at,
            targets=owners[:1],
        )
    )
    await session.flush()
    return []


async def handle_event(
    session: AsyncSession,
    *,
    event: CallEvent,
    push: Push | None = None,
    lookup: RingLookup | None = None,
) -> list[Delivery]:
    """Apply one CTI event; returns the fragments to push. ``push``: for the first ringing
    event of a call, send its pop at once, before the call is written. ``lookup``: the
    dedicated connections for the ringing look-up (PostgreSQL)."""
    if isinstance(event, CallRinging):
        return await on_ringing(session, event=event, push=push, lookup=lookup)
    if isinstance(event, CallAnswered):
        return await on_answered(session, event=event)
    if isinstance(event, CallEnded):
        return await on_ended(session, event=event)
    if isinstance(event, OutboundDialing):
        return await on_dialing(session, event=event)
    return []


async def pops_for(session: AsyncSession, *, staff_id: int, ring_timeout_s: int) -> list[str]:
    """Fragments a (re)connecting tab should show: calls still ringing for this operator —
    including calls that started ringing on their extension or line before they logged in —
    and calls they are on. The caller commits (late joiners become targets of the call)."""
    since = utcnow() - dt.timedelta(seconds=ring_timeout_s)
    presence = await get_presence(session, staff_id=staff_id)
    ringing = (
        await session.scalars(
            select(Call)
            .where(Call.state == "ringing", Call.started_at >= since)
            .order_by(Call.started_at)
        )
    ).all()
    active = (
        await session.scalars(
            select(Call).where(Call.state == "answered", Call.staff_id == staff_id)
        )
    ).all()

    def rings_for_me(call: Call) -> bool:
        if staff_id in call.targets:
            return True
        if presence is None or presence.state == "offline":
            return False
        if call.extension:
            return call.extension == presence.extension
        return call.line == presence.line and presence.state == "available"

    out = []
    for call in active:
        out.append(await render_pop(session, call))
    for call in ringing:
        if rings_for_me(call):
            if staff_id not in call.targets:
                call.targets = sorted({*call.targets, staff_id})
            out.append(await render_pop(session, call))
    return out


async def expire_ringing(session: AsyncSession, *, ring_timeout_s: int) -> list[Delivery]:
    """Calls that rang longer than the timeout without an answer or an end become missed."""
    since = utcnow() - dt.timedelta(seconds=ring_timeout_s)
    stale = (
        await session.scalars(select(Call).where(Call.state == "ringing", Call.started_at < since))
    ).all()
    out: list[Delivery] = []
    for call in stale:
        call.state = "missed"
        call.callback_status = "pending"
        call.ended_at = utcnow()
        if call.targets:
            out.append(Delivery(call.targets, close_pop(call)))
    return out
