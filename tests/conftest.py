"""Shared fixtures.

``db_url`` runs a test on a SQLite file and on PostgreSQL (a fresh database per test).  PostgreSQL
comes from ``$SYNCD_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``).
Outside CI an unreachable PostgreSQL skips that leg with the reason; with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from syncd.logging import SECRETS

POSTGRES_URL = os.environ.get(
    "SYNCD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _postgres_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not."""
    import asyncpg

    try:
        conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {POSTGRES_URL} unreachable ({type(exc).__name__}: {exc})"
    await conn.close()
    return None


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import asyncpg

    reason = await _postgres_available()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason}: the PostgreSQL leg is required when CI=true")
        pytest.skip(f"{reason}; set SYNCD_TEST_POSTGRES_URL to run the PostgreSQL leg")
    name = f"syncd_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(autouse=True)
def _fresh_secret_registry() -> Iterator[None]:
    """Each test starts with no registered secrets and default structlog config."""
    SECRETS.clear()
    yield
    SECRETS.clear()
    structlog.reset_defaults()
