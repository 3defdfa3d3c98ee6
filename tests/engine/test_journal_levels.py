"""A plan is journaled level by level while it is applied: never an operation sent unjournaled."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from syncd.db.models import LedgerEntry, Operation
from syncd.engine.apply import Applier
from syncd.engine.run import run_cycle
from syncd.errors import DatabaseError

from .conftest import World
from .test_sync_e2e import assert_converged


async def _operations(world: World, run_id: int) -> list[Operation]:
    async with world.ctx.sessions() as db:
        return list((await db.execute(sa.select(Operation).where(Operation.run_id == run_id))).scalars())


async def test_every_operation_is_journaled_before_it_is_sent(world: World) -> None:
    report = await run_cycle(world.ctx)
    assert report.result == "success", report.error
    ops = await _operations(world, report.run_id)
    levels = {op.level for op in ops}
    assert len(levels) >= 3 and len(ops) == world.workbox_requests()
    assert all(op.state == "done" and op.sent_at is not None for op in ops)
    assert all(op.created_at <= op.sent_at for op in ops)  # type: ignore[operator]
    # the later levels were journaled in their own transactions, after the first level was
    first = min(levels)
    first_written = max(op.created_at for op in ops if op.level == first)
    first_sent = min(op.sent_at for op in ops if op.level == first)  # type: ignore[type-var]
    assert first_written <= first_sent
    assert len({op.created_at for op in ops}) >= len(levels)
    await assert_converged(world)


async def test_a_level_that_cannot_be_journaled_stops_the_push_before_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Applier.journal
    calls = 0

    async def journal(self: Applier, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second level's first chunk: the database went away
            raise DatabaseError("database lost (injected)")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Applier, "journal", journal)
    report = await run_cycle(world.ctx)
    assert report.result == "failed" and report.exit_code == 1
    assert "database lost" in (report.error or "")
    ops = await _operations(world, report.run_id)
    first = {op.level for op in ops}
    assert len(first) == 1  # only the first level was journaled ...
    assert world.workbox_requests() == len(ops)  # ... and nothing else was sent
    assert all(op.state == "done" for op in ops)  # its outcomes were settled before stopping
    async with world.ctx.sessions() as db:
        assert await db.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == len(ops)

    monkeypatch.setattr(Applier, "journal", real)
    sent = world.workbox_requests()
    again = await run_cycle(world.ctx)
    assert again.result == "success", again.error
    assert again.recovered is not None and again.recovered.total_done == 0  # nothing was left in flight
    assert world.workbox_requests() - sent == len(again.ops)  # the rest, once each
    await assert_converged(world)
