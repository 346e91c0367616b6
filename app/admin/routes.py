"""管理: CTI source states, staff log-ins and their presence, the audit log."""

from __future__ import annotations

import logging

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.audit.models import AuditLog
from app.auth.models import ROLE_LABELS, Role, Staff
from app.calls.models import PRESENCE_LABELS, Presence
from app.security import requires_role
from app.web import db, render
from cti_bridge.status import BridgeProcess, read_bridge_statuses

log = logging.getLogger("yebisu.admin")

SOURCE_STATES = {
    "idle": "待機",
    "connecting": "接続中",
    "up": "接続",
    "down": "切断（再接続待ち）",
    "stopped": "停止",
}


@requires_role("admin")
async def admin_home(request: Request) -> Response:
    session = db(request)
    cti = request.app.state.cti
    statuses = cti.bridge.statuses() if cti.bridge is not None else []
    bridges: list[BridgeProcess] = []
    bridges_error = ""
    if cti.remote is not None:
        try:
            bridges = await read_bridge_statuses(
                cti.remote.redis, prefix=request.app.state.settings.redis.channel_prefix
            )
        except Exception as exc:  # Redis down: the page still shows, with the reason
            log.warning("admin: cannot read bridge states from Redis: %s", exc)
            bridges_error = "Redis に接続できないため、ブリッジの状態を読めません。"
    staff_rows = (
        await session.execute(
            select(Staff, Presence)
            .outerjoin(Presence, Presence.staff_id == Staff.id)
            .order_by(Staff.role, Staff.login)
        )
    ).all()
    audit = (
        await session.execute(
            select(AuditLog, Staff.name)
            .outerjoin(Staff, Staff.id == AuditLog.staff_id)
            .order_by(AuditLog.id.desc())
            .limit(100)
        )
    ).all()
    return render(
        request,
        "admin",
        {
            "statuses": statuses,
            "bridge_in_process": cti.bridge is not None,
            "bridges": bridges,
            "bridges_error": bridges_error,
            "redis": cti.remote is not None,
            "source_states": SOURCE_STATES,
            "staff_rows": staff_rows,
            "role_labels": {r.value: label for r, label in ROLE_LABELS.items()},
            "presence_labels": PRESENCE_LABELS,
            "audit": audit,
            "roles": [r.value for r in Role],
        },
    )


routes = [Route("/admin", admin_home, methods=["GET"])]
