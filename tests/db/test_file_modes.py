"""The SQLite state is private to its user, whatever the umask (issue 13, hole 11b).

The database holds names, e-mails and phone numbers: under the usual umask 022 it used to be created
0644 (readable by every local user).  SQLite-only: PostgreSQL keeps no files of ours.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.db.engine import create_engine, upgrade
from syncd.service.lease import hold_lease


@pytest.fixture(autouse=True)
def _umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_new_database_state_directory_and_lock_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state" / "syncd"
    db = state / "syncd.db"
    url = f"sqlite+aiosqlite:///{db}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with hold_lease(url, engine, period=30, wait=0):
            lock = db.with_name("syncd.db.lock")
            assert lock.exists() and mode(lock) == 0o600
            files = [p for p in state.iterdir() if p.name.startswith("syncd.db")]
            assert {p.name for p in files} >= {"syncd.db", "syncd.db.lock"}
            for p in files:  # the database, its -wal and -shm, the lock
                assert mode(p) == 0o600, f"{p.name} is {mode(p):o}"
    finally:
        await engine.dispose()
    assert mode(state) == 0o700
    assert mode(tmp_path / "state") == 0o700  # a missing parent is created private too


async def test_existing_directory_is_left_as_it_is(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "syncd.db") == 0o600
