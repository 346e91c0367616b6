"""In-process job scheduling for the embedded default (no Redis)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings


class JobRuntime:
    """Started and stopped by the app's lifespan."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
