"""Issue 13 hole 5: a staging database lost under a running process fails the run, loudly.

A SQLite file deleted (or replaced) while a run applies used to end in ``success``: the run wrote into
the unlinked file and the next one started from an empty ledger.  On PostgreSQL, a database that is
no longer the one the process opened (another identity row) is caught the same way.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syncd.engine.apply import Applier
from syncd.engine.cycle import run_cycle
from syncd.engine.plan import Op
from syncd.states import RunResult
from tests.engine.conftest import World


def _before_apply(monkeypatch: pytest.MonkeyPatch, lose: Callable[[], Awaitable[None]]) -> None:
    """Run ``lose`` once the plan is made, just before its operations are journaled and sent."""
    original = Applier.journal_and_drive

    async def journal_and_drive(
        self: Applier, run_id: int, plan_id: str, ops: Sequence[Op], **kw: Any
    ) -> Any:
        await lose()
        return await original(self, run_id, plan_id, ops, **kw)

    monkeypatch.setattr(Applier, "journal_and_drive", journal_and_drive)


def _sqlite_path(world: World) -> str | None:
    url = make_url(world.settings.database.url)
    return url.database if url.get_backend_name() == "sqlite" else None


async def _swap_identity(world: World) -> None:
    """What a PostgreSQL database that is no longer the one this process opened looks like."""
    async with world.ctx.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE database_identity SET id = :id"), {"id": str(uuid.uuid4())})


async def test_database_lost_during_a_run_fails_the_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sqlite_path(world)

    async def lose() -> None:
        if path is not None:
            os.unlink(path)  # rm while the process runs: its connections keep writing the unlinked inode
        else:
            await _swap_identity(world)

    _before_apply(monkeypatch, lose)
    report = await run_cycle(world.ctx)
    assert report.result is RunResult.FAILED, report.message()
    assert report.exit_code == 1
    assert report.error is not None
    assert "restore" in report.error and "backup" in report.error, report.error
    if path is not None:
        assert path in report.error and "deleted" in report.error, report.error
    assert report.error in report.message()


async def test_sqlite_file_replaced_under_a_running_process_fails_the_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same identity row, another file (a copy put back in place): the run's writes are not on disk."""
    path = _sqlite_path(world)
    if path is None:
        pytest.skip("a file check: SQLite only (PostgreSQL is covered by the identity row)")

    async def lose() -> None:
        shutil.copyfile(path, path + ".copy")
        os.replace(path + ".copy", path)

    _before_apply(monkeypatch, lose)
    report = await run_cycle(world.ctx)
    assert report.result is RunResult.FAILED, report.message()
    assert report.error is not None and path in report.error and "replaced" in report.error, report.error


async def test_an_intact_database_passes_the_check_every_cycle(world: World) -> None:
    for _ in range(2):
        report = await run_cycle(world.ctx)
        assert report.result is RunResult.SUCCESS, report.message()
    async with world.ctx.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT id, created_at FROM database_identity"))).all()
    assert len(rows) == 1 and uuid.UUID(rows[0][0])
