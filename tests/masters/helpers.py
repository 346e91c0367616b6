"""Helpers of the masters tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from app.db import make_engine, make_sessionmaker, transaction
from tests.conftest import csrf_of, run_async


def db_run(url: str, fn: Callable[[Any], Any]) -> Any:
    """Run ``await fn(session)`` in its own transaction."""

    async def go() -> Any:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                return await fn(s)
        finally:
            await engine.dispose()

    return run_async(go())


def post(client: Any, url: str, data: dict[str, Any], **kw: Any) -> Any:
    return client.post(
        url, data={**data, "csrf_token": csrf_of(client)}, follow_redirects=False, **kw
    )


def error_of(html: str, field: str) -> str:
    """The message shown beside a form field."""
    m = re.search(rf'id="f-{field}-error">([^<]*)<', html)
    return m.group(1) if m else ""


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
