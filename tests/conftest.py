"""Shared fixtures.

``db_url`` runs a test on a SQLite file and on PostgreSQL (a fresh database per test).  PostgreSQL
comes from ``$SYNCD_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``).
Outside CI an unreachable PostgreSQL skips that leg with the reason; with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from syncd.logging import SECRETS
from tests.support.pg import postgres_reason, temporary_database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    reason = await postgres_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason}: the PostgreSQL leg is required when CI=true")
        pytest.skip(f"{reason}; set SYNCD_TEST_POSTGRES_URL to run the PostgreSQL leg")
    async with temporary_database("syncd_test") as url:
        yield url


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
