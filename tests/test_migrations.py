"""Alembic migrations run up and down on the backend of this run (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from app.db import Base, make_engine
from app.migrate import downgrade, upgrade


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _indexes(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            idx = await conn.run_sync(lambda c: inspect(c).get_indexes(table))
            return {",".join(i["column_names"]) for i in idx}  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def test_migrations_create_every_model_table_and_go_back_down(database_url: str) -> None:
    import app.models  # noqa: F401

    tables = asyncio.run(_tables(database_url))
    assert set(Base.metadata.tables) <= tables
    assert {"e164", "last8"} <= asyncio.run(_indexes(database_url, "customer_phones"))
    downgrade(database_url, "base")
    assert asyncio.run(_tables(database_url)) <= {"alembic_version"}
    upgrade(database_url)
    assert set(Base.metadata.tables) <= asyncio.run(_tables(database_url))


def test_models_and_migrations_agree(database_url: str) -> None:
    """Autogenerate finds nothing to add: the migrations match the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import app.models  # noqa: F401

    async def diff() -> list[object]:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []
