"""Two first starts on an empty database migrate it once, and both succeed (issue 13, hole 11d).

On PostgreSQL concurrent first starts used to run the initial migration at once and all but one
failed (UniqueViolation on ``pg_type`` from the racing ``CREATE TABLE alembic_version``, or a
DuplicateTable); migrations now run under a PostgreSQL advisory lock (on SQLite, under an exclusive
transaction).  Each start is its own process, as in production (Alembic's ``context`` is
process-global, so in-process concurrency would test nothing real).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from tests.support.pg import temporary_database

ROUNDS = 3
STARTS = 3

#: one syncd start's migration step: wait for the common start time, then upgrade
UPGRADE = """
import asyncio, sys, time
from syncd.db import engine as dbe

async def main(url: str, start_at: float) -> None:
    engine = dbe.create_engine(url)
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await dbe.upgrade(engine)
        assert await dbe.current_revision(engine) == dbe.head_revision()
    finally:
        await engine.dispose()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def _concurrent_first_upgrades(url: str) -> None:
    start_at = f"{time.time() + 4:.3f}"  # every process has imported syncd by then
    pipe = asyncio.subprocess.PIPE
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", UPGRADE, url, start_at, stdout=pipe, stderr=pipe
        )
        for _ in range(STARTS)
    ]
    async with asyncio.timeout(90):
        results = [await p.communicate() for p in procs]
    failures = [err.decode()[-600:] for p, (_, err) in zip(procs, results, strict=True) if p.returncode != 0]
    assert not failures, failures


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_url")  # PostgreSQL reachable (required with CI=true)
async def test_concurrent_first_upgrades_on_postgres_all_succeed() -> None:
    for _ in range(ROUNDS):  # a fresh, empty database each round: the race is on the first migration
        async with temporary_database("syncd_race") as url:
            await _concurrent_first_upgrades(url)


async def test_concurrent_first_upgrades_on_sqlite_all_succeed(tmp_path: Path) -> None:
    for n in range(ROUNDS):
        await _concurrent_first_upgrades(f"sqlite+aiosqlite:///{tmp_path / f'race{n}.db'}")
