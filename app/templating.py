"""The app's Jinja environment (``templates``) and its filters, below every feature.

Services that render a fragment for a push (the pop, the board) use ``templates.env`` from
here; route modules reach the same object through :mod:`app.web`, which adds the request
context processor (the staff member, the CSRF token, the menu) when it is imported.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from starlette.templating import Jinja2Templates

from app.dates import JST

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"


def jst(value: dt.datetime | None, fmt: str = "%Y/%m/%d %H:%M") -> str:
    """The ``jst`` filter: a moment as Japan time, ``""`` for none."""
    if value is None:
        return ""
    return value.astimezone(JST).strftime(fmt)


def yen(value: int | None) -> str:
    """The ``yen`` filter: an amount with thousands separators, ``""`` for none."""
    return "" if value is None else f"{value:,}"


def make_templates() -> Jinja2Templates:
    """A Jinja environment over ``templates/`` with the app's filters (no context processor)."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["jst"] = jst
    templates.env.filters["yen"] = yen
    return templates


templates = make_templates()
