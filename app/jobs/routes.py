"""ジョブ: running, finished and failed jobs."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
