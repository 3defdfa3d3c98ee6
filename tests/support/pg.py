"""PostgreSQL for tests and campaigns: is it there, and a fresh database that is dropped afterwards.

Shared by tests/conftest.py, the campaigns (tests/support/campaigns) and bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg

POSTGRES_URL = os.environ.get("SYNCD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy ``postgresql+asyncpg://`` URL as a plain asyncpg DSN."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def postgres_reason(url: str = POSTGRES_URL) -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {url} unreachable ({type(exc).__name__}: {exc})"
    await conn.close()
    return None


@contextlib.asynccontextmanager
async def temporary_database(
    prefix: str, url: str = POSTGRES_URL, *, drop_retries: int = 1
) -> AsyncIterator[str]:
    """A fresh, empty database next to ``url``; dropped afterwards (retried ``drop_retries`` times, a
    second apart, for a PostgreSQL that is restarting)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        for attempt in range(drop_retries):
            try:
                admin = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await admin.close()
                break
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if attempt + 1 == drop_retries:
                    raise
                await asyncio.sleep(1)
