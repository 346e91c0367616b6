"""ジョブ: running, finished and failed job runs, a progress fragment that refreshes itself
while a run is under way, and 再実行 of a finished run."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.db import transaction
from app.errors import error_response
from app.runs.models import JobRun
from app.runs.service import JobError, list_runs, rerun
from app.security import requires_role
from app.web import current_staff, db, render, templates

ROLES = ("backoffice",)  # admin always
PROGRESS_ROLES = ("backoffice", "supervisor")
STATUS_CHOICES = (("", "すべて"), ("running", "実行中"), ("failed", "失敗"), ("done", "完了"))


async def _context(request: Request, **extra: object) -> dict[str, object]:
    status = request.query_params.get("status", "")
    if status not in dict(STATUS_CHOICES):
        status = ""
    runs = await list_runs(db(request), status=status)
    return {"runs": runs, "status": status, "status_choices": STATUS_CHOICES, **extra}


@requires_role(*ROLES)
async def jobs_page(request: Request) -> Response:
    """ジョブ: the latest runs with their progress, message, error and 再実行."""
    return render(request, "jobs", await _context(request))


@requires_role(*PROGRESS_ROLES)
async def job_progress(request: Request) -> Response:
    """A run's progress fragment; it asks again every second while the run is under way and,
    once finished, tells the page (``HX-Trigger: job-finished``)."""
    run = await db(request).get(JobRun, int(request.path_params["run_id"]))
    if run is None:
        return error_response(request, 404, message="ジョブが見つかりません。")
    headers = {"HX-Trigger": "job-finished"} if run.finished else None
    return templates.TemplateResponse(request, "jobs/_progress.html", {"run": run}, headers=headers)


@requires_role(*ROLES)
async def job_rerun(request: Request) -> Response:
    """再実行: a new run of the same job with the same parameters."""
    staff = current_staff(request)
    error = ""
    run_id: int | None = None
    try:
        async with transaction(request.app.state.sessionmaker) as session:
            run = await rerun(
                session,
                run_id=int(request.path_params["run_id"]),
                staff_id=staff.id if staff else None,
            )
            run_id = run.id
    except JobError as exc:
        error = str(exc)
    if run_id is not None:
        await request.app.state.jobs.submit(run_id)
    ctx = await _context(request, error=error, started=run_id)
    return render(request, "jobs", ctx, status_code=409 if error else 200)


routes: list[BaseRoute] = [
    Route("/jobs", jobs_page, methods=["GET"]),
    Route("/jobs/{run_id:int}/progress", job_progress, methods=["GET"]),
    Route("/jobs/{run_id:int}/rerun", job_rerun, methods=["POST"]),
]
