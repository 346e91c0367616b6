"""Next-date rules: month ends and leap years, N-month and N-week intervals, skips, pauses and
resuming, interval changes — as the change screens and the daily run apply them."""

from __future__ import annotations

import datetime as dt

import pytest

from app.subscriptions.changes import (
    ChangeInput,
    SubscriptionConflict,
    SubscriptionInputError,
    parse_month,
    parse_schedule,
    plan_change,
)
from app.subscriptions.models import Subscription
from app.subscriptions.service import following, next_after

D = dt.date


def test_following_month_ends_and_leap_years() -> None:
    monthly = {"interval_unit": "month", "interval_n": 1, "day_of_month": 31}
    assert following(**monthly, after=D(2024, 1, 31)) == D(2024, 2, 29)  # leap year
    assert following(**monthly, after=D(2024, 2, 29)) == D(2024, 3, 31)  # back to the 31st
    assert following(**monthly, after=D(2025, 1, 31)) == D(2025, 2, 28)
    assert following(**monthly, after=D(2025, 12, 31)) == D(2026, 1, 31)  # year end
    day30 = {"interval_unit": "month", "interval_n": 1, "day_of_month": 30}
    assert following(**day30, after=D(2024, 1, 30)) == D(2024, 2, 29)
    every2 = {"interval_unit": "month", "interval_n": 2, "day_of_month": 29}
    assert following(**every2, after=D(2023, 12, 29)) == D(2024, 2, 29)
    assert following(**every2, after=D(2024, 12, 29)) == D(2025, 2, 28)
    every3 = {"interval_unit": "month", "interval_n": 3, "day_of_month": 10}
    assert following(**every3, after=D(2025, 11, 10)) == D(2026, 2, 10)


def test_following_n_weeks_keeps_the_weekday() -> None:
    weekly = {"interval_unit": "week", "interval_n": 3, "day_of_month": 0}
    assert following(**weekly, after=D(2024, 2, 15)) == D(2024, 3, 7)
    assert following(**weekly, after=D(2025, 12, 25)) == D(2026, 1, 15)
    assert D(2026, 1, 15).weekday() == D(2025, 12, 25).weekday()


def test_next_after_a_run_day_skips_whole_missed_periods() -> None:
    monthly = {"interval_unit": "month", "interval_n": 1, "day_of_month": 31}
    assert next_after(**monthly, due=D(2024, 1, 31), day=D(2024, 1, 31)) == D(2024, 2, 29)
    assert next_after(**monthly, due=D(2024, 1, 31), day=D(2024, 4, 2)) == D(2024, 4, 30)
    weekly = {"interval_unit": "week", "interval_n": 2, "day_of_month": 0}
    assert next_after(**weekly, due=D(2026, 3, 2), day=D(2026, 3, 20)) == D(2026, 3, 30)


def test_schedule_input() -> None:
    errors: dict[str, str] = {}
    s = parse_schedule(interval="m", interval_n="３", day="末日", errors=errors)
    assert s is not None and (s.interval_unit, s.interval_n, s.day_of_month) == ("month", 3, 31)
    s = parse_schedule(interval="w", interval_n="2", day="", errors=errors)
    assert s is not None and (s.interval_unit, s.interval_n) == ("week", 2)
    assert errors == {}
    assert parse_schedule(interval="m1", interval_n="", day="32", errors=errors) is None
    assert errors == {"day": "配送日は1〜31日（31日は末日）で入力してください。"}
    assert parse_month("2026/2") == D(2026, 2, 1)
    assert parse_month("２０２６年１２月") == D(2026, 12, 1)
    assert parse_month("202613") is None


def _sub(**kw: object) -> Subscription:
    values: dict[str, object] = {
        "id": 1,
        "customer_id": 1,
        "start_month": D(2024, 1, 1),
        "interval_unit": "month",
        "interval_n": 1,
        "day_of_month": 31,
        "next_date": D(2024, 1, 31),
        "status": "active",
        "paused_until": None,
        "version": 3,
        "carrier_id": None,
        "ship_to_id": None,
        "payment_method": "cod",
    }
    values.update(kw)
    return Subscription(**values)


class _NoSession:
    """plan_change only reads the session for prices and cancel reasons."""

    async def scalar(self, *a: object, **k: object) -> None:
        return None

    async def execute(self, *a: object, **k: object) -> list[object]:
        return []


async def _plan(sub: Subscription, today: dt.date, **kw: str) -> dict[str, object]:
    plan = await plan_change(
        _NoSession(),  # type: ignore[arg-type]
        sub=sub,
        data=ChangeInput(version=str(sub.version), **kw),
        today=today,
    )
    return plan.values


async def test_skip_moves_to_the_following_delivery() -> None:
    values = await _plan(_sub(), D(2024, 1, 20), op="skip")
    assert values == {"next_date": D(2024, 2, 29)}
    weekly = _sub(interval_unit="week", interval_n=2, next_date=D(2024, 1, 25))
    assert (await _plan(weekly, D(2024, 1, 20), op="skip")) == {"next_date": D(2024, 2, 8)}


async def test_pause_until_a_month_then_resume() -> None:
    values = await _plan(_sub(), D(2024, 1, 20), op="pause", until="2024/04")
    assert values == {
        "status": "paused",
        "paused_until": D(2024, 4, 30),
        "next_date": D(2024, 5, 31),
    }
    paused = _sub(status="paused", paused_until=D(2024, 4, 30), next_date=D(2024, 5, 31))
    resumed = await _plan(paused, D(2024, 2, 10), op="resume")
    assert resumed == {"status": "active", "paused_until": None, "next_date": D(2024, 2, 29)}
    weekly = _sub(
        interval_unit="week",
        interval_n=1,
        status="paused",
        paused_until=D(2024, 3, 31),
        next_date=D(2024, 4, 4),
    )
    assert (await _plan(weekly, D(2024, 3, 12), op="resume"))["next_date"] == D(2024, 3, 14)
    with pytest.raises(SubscriptionInputError) as e:
        await _plan(_sub(), D(2024, 3, 12), op="pause", until="2024/02")
    assert e.value.errors == {"until": "休止は今月以降の月を指定してください。"}


async def test_interval_change_keeps_the_next_month_on_the_new_day() -> None:
    values = await _plan(_sub(), D(2024, 1, 20), op="interval", interval="m2", day="10")
    # The 10th of January has passed: January's delivery keeps its date (the 31st), and the
    # new day applies from the next one (two months on, the 10th).
    assert values["next_date"] == D(2024, 1, 31)
    assert (values["interval_n"], values["day_of_month"]) == (2, 10)
    after = next_after(
        interval_unit="month", interval_n=2, day_of_month=10, due=D(2024, 1, 31), day=D(2024, 1, 31)
    )
    assert after == D(2024, 3, 10)
    values = await _plan(_sub(), D(2024, 1, 5), op="interval", interval="m1", day="15")
    assert values["next_date"] == D(2024, 1, 15)
    # A delivery due today is not made yet: changing the interval keeps it today.
    due_today = _sub(next_date=D(2024, 1, 20), day_of_month=20)
    values = await _plan(
        due_today, D(2024, 1, 20), op="interval", interval="w", interval_n="2", day=""
    )
    assert values["next_date"] == D(2024, 1, 20)
    values = await _plan(due_today, D(2024, 1, 20), op="interval", interval="m1", day="5")
    assert values["next_date"] == D(2024, 1, 20)


async def test_a_stale_version_or_a_cancelled_subscription_is_refused() -> None:
    with pytest.raises(SubscriptionConflict):
        await plan_change(
            _NoSession(),  # type: ignore[arg-type]
            sub=_sub(),
            data=ChangeInput(op="skip", version="2"),
            today=D(2024, 1, 1),
        )
    with pytest.raises(SubscriptionInputError):
        await _plan(_sub(status="cancelled", next_date=None), D(2024, 1, 1), op="skip")
