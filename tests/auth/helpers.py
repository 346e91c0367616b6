"""Helpers of the session and log-in tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.config import Settings
from tests.masters.helpers import db_run


@contextmanager
def app_client(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """A client of an app built from ``settings`` as the test changed them."""
    from starlette.testclient import TestClient

    from app.main import create_app

    app = create_app(settings, var_dir=tmp_path / "var")
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def session_rows(url: str) -> list[Any]:
    from app.auth.models import UserSession

    async def fn(s: Any) -> list[Any]:
        return list((await s.scalars(select(UserSession))).all())

    return list(db_run(url, fn))


def audit_actions(url: str) -> list[tuple[str, int | None, int | None, Any]]:
    from app.audit.models import AuditLog

    async def fn(s: Any) -> list[tuple[str, int | None, int | None, Any]]:
        rows = await s.scalars(select(AuditLog).order_by(AuditLog.id))
        return [(r.action, r.staff_id, r.entity_id, r.changes) for r in rows]

    return list(db_run(url, fn))


def staff_row(url: str, login_id: str) -> Any:
    from app.auth.models import Staff

    async def fn(s: Any) -> Any:
        return await s.scalar(select(Staff).where(Staff.login == login_id))

    return db_run(url, fn)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def switch(client: Any, jar: dict[str, str]) -> None:
    """Use the cookies ``jar`` (saved with ``dict(client.cookies)``) from now on."""
    client.cookies.clear()
    for name, value in jar.items():
        client.cookies.set(name, value, domain="testserver.local")
