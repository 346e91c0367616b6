"""名寄せ (M6): 新規顧客登録 with the duplicate check, the batch duplicate list, and merging."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlencode

import jaconv
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.customers.duplicates import MODES, Candidate, DuplicatesFound, duplicate_groups
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer
from app.customers.postcodes import PREFECTURES
from app.customers.service import (
    PHONE_KINDS,
    CustomerInputError,
    customer_cards,
    register_customer,
)
from app.inputs import ascii_int, normalise, read_form
from app.merge.service import MOVED, MergePlan, merge_customers, plan_merge
from app.security import requires_role
from app.web import db, render, require_staff
from cti_bridge.numbers import normalise_stored

MERGE_ROLES = ("supervisor", "backoffice")
NEW_FIELDS = (
    "name",
    "kana",
    "phone",
    "phone_kind",
    "postcode",
    "prefecture",
    "city",
    "street",
    "building",
    "email",
)
NEW_FKEYS = [(1, "登録", "#new-save")]
CONFIRM_FKEYS = [(1, "別人として登録", "#new-save")]
DEFAULT_PURPOSE = "重複登録の統合"

_PHONE_SEPARATORS = re.compile(r"[-ー－‐―−()（）+\s]")


# --- 新規顧客登録 ----------------------------------------------------------------------------


def prefill(q: str) -> dict[str, str]:
    """The new-customer form filled from what was searched: a phone number goes to the phone,
    an e-mail address to the e-mail, kana to the kana, anything else to the name."""
    q = q.strip()
    if not q:
        return {}
    if "@" in q:
        return {"email": q}
    if _PHONE_SEPARATORS.sub("", name_key(q)).isdigit():
        return {"phone": q} if normalise_stored(q).number_e164 else {}
    key = kana_key(q)
    if all("\u30a0" <= ch <= "\u30ff" for ch in key):
        return {"kana": jaconv.hira2kata(unicodedata.normalize("NFKC", q))}
    return {"name": q}


def _focus(values: dict[str, str], errors: dict[str, str]) -> str:
    """The field the cursor starts in: the first with an error, else the first empty one."""
    order = ("name", "kana", "phone", "postcode", "city", "street", "email")
    for key in order:
        if key in errors:
            return key
    return next((k for k in ("name", "kana", "phone") if not values.get(k)), "name")


def _new_page(
    request: Request,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    candidates: list[Candidate] | None = None,
    status_code: int = 200,
) -> Response:
    errors = errors or {}
    return render(
        request,
        "customer_new",
        {
            "v": values,
            "errors": errors,
            "candidates": candidates or [],
            "focus": _focus(values, errors),
            "phone_kinds": PHONE_KINDS,
            "prefectures": PREFECTURES,
            "fkeys": CONFIRM_FKEYS if candidates else NEW_FKEYS,
        },
        status_code=status_code,
    )


async def new_customer(request: Request) -> Response:
    """新規顧客登録: the form, filled from the search (``?q=``) when it came from there."""
    values = {k: "" for k in NEW_FIELDS}
    values["phone_kind"] = "home"
    values.update(prefill(request.query_params.get("q", "")))
    if values["phone"].replace("-", "").startswith(("090", "080", "070")):
        values["phone_kind"] = "mobile"
    return _new_page(request, values)


def _seen(form: FormData) -> set[int]:
    raw = str(form.get("seen", ""))
    return {n for p in raw.split(",") if (n := ascii_int(p)) is not None}


async def new_customer_save(request: Request) -> Response:
    """Save the new customer — after showing the existing customers who may be the same
    person, until the operator registers past them (``confirm=1``) — and open the monitor."""
    staff = require_staff(request)
    form = await read_form(request)
    values = {k: str(form.get(k, "")) for k in NEW_FIELDS}
    confirmed = str(form.get("confirm", "")) == "1"
    try:
        customer = await register_customer(
            db(request),
            name=values["name"],
            kana=values["kana"],
            phone=values["phone"],
            phone_kind=values["phone_kind"] or "home",
            staff_id=staff.id,
            postcode=values["postcode"],
            prefecture=values["prefecture"],
            city=values["city"],
            street=values["street"],
            building=values["building"],
            email=values["email"],
            check_duplicates=True,
            known_duplicates=_seen(form) if confirmed else (),
        )
    except CustomerInputError as exc:
        return _new_page(request, values, errors=exc.errors, status_code=400)
    except DuplicatesFound as exc:
        return _new_page(request, values, candidates=exc.candidates)
    return RedirectResponse(f"/customers/{customer.id}", status_code=303)


# --- 名寄せ一覧 -----------------------------------------------------------------------------


def _int(value: str | None, default: int) -> int:
    number = ascii_int(value)
    return default if number is None else number


@requires_role(*MERGE_ROLES)
async def duplicates(request: Request) -> Response:
    """名寄せ一覧: groups of active customers with the same name and phone (or the same phone
    only), a page at a time, each ready to merge."""
    q = request.query_params
    mode = q.get("mode", "name_phone")
    mode = mode if mode in MODES else "name_phone"
    page = await duplicate_groups(db(request), mode=mode, page=_int(q.get("page"), 1))
    done = None
    done_id = ascii_int(q.get("done"))
    if done_id is not None:
        done = await db(request).get(Customer, done_id)
    return render(
        request,
        "duplicates",
        {
            "page": page,
            "modes": MODES,
            "done": done,
            "back": f"/customers/duplicates?{urlencode({'mode': mode, 'page': page.page})}",
            "fkeys": [(1, "統合内容を確認", ".dup-group button[type=submit]")]
            if page.groups
            else [],
        },
    )


# --- 統合 ---------------------------------------------------------------------------------


async def _customer_id(session: AsyncSession, value: str) -> int | None:
    """The customer of an お届け先コード (as listed, or typed without the leading zeros)."""
    value = normalise(value)
    if not (value.isascii() and value.isdigit()):
        return None
    found = await session.scalar(select(Customer.id).where(Customer.code == value))
    if found is None and len(value) < 8:
        found = await session.scalar(select(Customer.id).where(Customer.code == f"{value:0>8}"))
    return int(found) if found is not None else None


def _back(value: str) -> str:
    """Where to return after merging: the duplicate list the merge came from, if it did."""
    return value if value.startswith("/customers/duplicates") else ""


async def _merge_page(
    request: Request,
    *,
    plan: MergePlan | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    cards = {}
    if plan is not None:
        ids = [plan.survivor.id, plan.merged.id]
        cards = {c.id: c for c in await customer_cards(db(request), customer_ids=ids)}
    return render(
        request,
        "merge",
        {
            "plan": plan,
            "cards": cards,
            "moved": MOVED,
            "v": values,
            "errors": errors or {},
            "fkeys": [(1, "統合", "#merge-submit")] if plan is not None else [],
        },
        status_code=status_code,
    )


@requires_role(*MERGE_ROLES)
async def merge(request: Request) -> Response:
    """統合: the confirm screen (GET, or POST without ``confirm``) shows both customers side
    by side with what will move; POST with ``confirm=1`` merges and goes back to the list
    (or to the surviving customer's monitor)."""
    staff = require_staff(request)
    session = db(request)
    source: Any = await read_form(request) if request.method == "POST" else request.query_params
    values = {
        k: str(source.get(k, "")) for k in ("survivor", "merged", "purpose", "back", "versions")
    }
    values["back"] = _back(values["back"])
    if request.method == "GET" and not (values["survivor"] or values["merged"]):
        return await _merge_page(request, plan=None, values=values)  # the empty code form
    survivor_id = await _customer_id(session, values["survivor"])
    merged_id = await _customer_id(session, values["merged"])
    errors: dict[str, str] = {}
    for key, found, label in (
        ("survivor", survivor_id, "残す顧客"),
        ("merged", merged_id, "統合する顧客"),
    ):
        if not values[key].strip():
            errors[key] = f"{label}のお届け先コードを入力してください。"
        elif found is None:
            errors[key] = f"お届け先コード {values[key].strip()} の顧客は見つかりません。"
    if survivor_id is None or merged_id is None:
        return await _merge_page(request, plan=None, values=values, errors=errors, status_code=400)
    try:
        plan = await plan_merge(session, survivor_id=survivor_id, merged_id=merged_id)
    except CustomerInputError as exc:
        return await _merge_page(
            request, plan=None, values=values, errors=exc.errors, status_code=400
        )
    if request.method != "POST" or str(source.get("confirm", "")) != "1":
        values["purpose"] = values["purpose"] or DEFAULT_PURPOSE
        values["versions"] = f"{plan.survivor.version},{plan.merged.version}"
        return await _merge_page(request, plan=plan, values=values)
    purpose = values["purpose"].strip()
    if not purpose:
        errors["purpose"] = "統合の理由を入力してください。"
        return await _merge_page(request, plan=plan, values=values, errors=errors, status_code=400)
    shown = [ascii_int(x, max_digits=18) for x in values["versions"].split(",")]
    first, second = shown if len(shown) == 2 else (None, None)
    versions = (first, second) if first is not None and second is not None else None
    try:
        await merge_customers(
            session,
            survivor_id=survivor_id,
            merged_id=merged_id,
            staff_id=staff.id,
            purpose=purpose,
            versions=versions,
        )
    except (CustomerInputError, StaleDataError) as exc:
        await session.rollback()
        errors = (
            exc.errors
            if isinstance(exc, CustomerInputError)
            else {"merged": "他の担当者が同時に変更しました。もう一度確認してください。"}
        )
        try:
            again: MergePlan | None = await plan_merge(
                session, survivor_id=survivor_id, merged_id=merged_id
            )
        except CustomerInputError as later:
            again, errors = None, {**errors, **later.errors}
        if again is not None:
            values["versions"] = f"{again.survivor.version},{again.merged.version}"
        return await _merge_page(request, plan=again, values=values, errors=errors, status_code=400)
    if values["back"]:
        sep = "&" if "?" in values["back"] else "?"
        return RedirectResponse(f"{values['back']}{sep}done={survivor_id}", status_code=303)
    return RedirectResponse(f"/customers/{survivor_id}", status_code=303)


routes: list[BaseRoute] = [
    Route("/customers/new", new_customer, methods=["GET"]),
    Route("/customers/new", new_customer_save, methods=["POST"]),
    Route("/customers/duplicates", duplicates, methods=["GET"]),
    Route("/customers/merge", merge, methods=["GET", "POST"]),
]
