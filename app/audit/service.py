"""Audit log (A2): changes and views of sensitive data."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditLog


async def record(
    session: AsyncSession,
    *,
    action: str,
    entity: str = "",
    entity_id: int | None = None,
    staff_id: int | None = None,
    changes: dict[str, Any] | None = None,
    purpose: str = "",
    ip: str = "",
) -> None:
    """Add one audit entry to the current transaction."""
    session.add(
        AuditLog(
            action=action,
            entity=entity,
            entity_id=entity_id,
            staff_id=staff_id,
            changes=changes,
            purpose=purpose,
            ip=ip,
        )
    )
