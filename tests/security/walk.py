"""Every route of the app as (method, path) cases, with its path parameters filled from real
objects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.routing import Mount, Route, WebSocketRoute

from tests.security.access_table import WS_VARIANTS

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_]+)?\}")


@dataclass(frozen=True)
class Case:
    method: str  # GET, POST, …, or WS
    path: str  # as the route spells it (the table's key), WS variants with their query

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    def url(self, params: dict[str, str]) -> str:
        """The path with its parameters filled; a missing value fails loudly."""

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            assert name in params, (
                f"{self.method} {self.path}: no test value for path parameter {name!r}; "
                "add one in tests/security/conftest.py (_build_world)"
            )
            return params[name]

        return PARAM.sub(fill, self.path)


def cases(app: Any) -> list[Case]:
    """Every route × method (HEAD is GET's), every websocket route (× its variants) and every
    mount (GET of a file under it), in app order."""
    out: list[Case] = []
    for route in app.routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    out.append(Case(method, route.path))
        elif isinstance(route, WebSocketRoute):
            for variant in WS_VARIANTS.get(route.path, ("",)):
                out.append(Case("WS", route.path + variant))
        elif isinstance(route, Mount):
            out.append(Case("GET", route.path))
        else:  # pragma: no cover - a new kind of route must be taught here
            raise AssertionError(f"unknown route type {type(route).__name__}: {route!r}")
    return out


def mount_url(case: Case, params: dict[str, str]) -> str:
    """A mount is reached through a file under it."""
    return case.path.rstrip("/") + "/" + params["path"]


def is_mount(app: Any, case: Case) -> bool:
    return any(isinstance(r, Mount) and r.path == case.path for r in app.routes)
