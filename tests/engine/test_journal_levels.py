"""A plan is journaled level by level while it is applied: never an operation sent unjournaled."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.db import records
from syncd.db.models import Operation, SyncRun, utcnow
from syncd.engine.cycle import run_cycle
from syncd.engine.journal import Journal
from syncd.engine.plan import Op, summarize
from syncd.errors import DatabaseError

from .conftest import World
from .test_sync_e2e import assert_converged


async def _operations(world: World, run_id: int) -> list[Operation]:
    async with world.ctx.sessions() as db:
        return list((await db.execute(sa.select(Operation).where(Operation.run_id == run_id))).scalars())


def _received(world: World) -> dict[tuple[str, str], dt.datetime]:
    """When the sandbox received the first WORKBOX request of each (kind, external key): its request
    log stamps an entry as the request arrives, before anything is answered."""
    out: dict[tuple[str, str], dt.datetime] = {}
    for entry in world.sb.request_log.matching(vendor="workbox"):
        kind, key = entry["raw_path"].partition("?")[0].split("/")[-2:]
        out.setdefault((kind, key), dt.datetime.fromtimestamp(entry["ts"], dt.UTC))
    return out


async def test_every_operation_is_journaled_before_it_is_sent(world: World) -> None:
    report = await run_cycle(world.ctx)
    assert report.result == "success", report.error
    ops = await _operations(world, report.run_id)
    levels = {op.level for op in ops}
    assert len(levels) >= 3 and len(ops) == world.workbox_requests()
    assert all(op.state == "done" and op.sent_at is not None for op in ops)
    received = _received(world)
    assert set(received) == {(op.kind, op.external_key) for op in ops}  # every request is journaled
    # the journal row of each operation was written before the sandbox received its request (the
    # sandbox runs in this process: one clock)
    late = [
        f"{op.kind}/{op.external_key} level {op.level}: journaled {op.created_at.isoformat()}, "
        f"received {received[op.kind, op.external_key].isoformat()}"
        for op in ops
        if op.created_at > received[op.kind, op.external_key]
    ]
    assert not late, late[:5]
    # the later levels were journaled in their own transactions, after the first level was
    first = min(levels)
    first_written = max(op.created_at for op in ops if op.level == first)
    first_received = min(received[op.kind, op.external_key] for op in ops if op.level == first)
    assert first_written <= first_received
    assert len({op.created_at for op in ops}) >= len(levels)
    await assert_converged(world)


async def test_a_level_that_cannot_be_journaled_stops_the_push(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Journal.write
    calls = 0

    async def journal(self: Journal, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second level's first chunk: the database went away
            raise DatabaseError("database lost (injected)")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Journal, "write", journal)
    report = await run_cycle(world.ctx)
    assert report.result == "failed" and report.exit_code == 1
    assert "database lost" in (report.error or "")
    ops = await _operations(world, report.run_id)
    assert len({op.level for op in ops}) == 1  # only the first level was journaled ...
    assert world.workbox_requests() <= len(ops)  # ... and nothing beyond it was sent

    monkeypatch.setattr(Journal, "write", real)
    again = await run_cycle(world.ctx)
    assert again.result == "success", again.error
    async with world.ctx.sessions() as db:
        states = set((await db.execute(sa.select(Operation.state))).scalars())
    assert states <= {"done"}  # the first run's unsettled operations were recovered
    await assert_converged(world)


async def test_recovery_skips_the_dependants_of_a_failed_operation(world: World) -> None:
    """An operation left pending whose dependency failed in its run is skipped on recovery too."""
    applier = world.ctx.applier()
    parent_body = {"name": "Parent", "sortOrd": "0", "uprDeptExternalKey": "#"}
    dept = Op("dept", "k-orphan-parent", "create", parent_body)
    child = Op(
        "dept", "k-orphan-child", "create",
        {"name": "Child", "sortOrd": "0", "uprDeptExternalKey": "k-orphan-parent"},
    )  # fmt: skip
    dept.seq, dept.level = 1, 0
    child.seq, child.level, child.depends_on = 2, 1, [1]
    async with world.ctx.sessions.begin() as db:
        run = SyncRun(trigger="test", started_at=utcnow(), result="failed", holder="test")
        db.add(run)
        await db.flush()
        run_id = run.id
    plan_id = await records.store_plan(
        world.ctx.sessions, run_id=run_id, plan_hash="x", ledger_hash="x", status="applied",
        hold_reason=None, summary=summarize([dept, child]), operations=[],
    )  # fmt: skip
    jobs = await applier.journal(run_id, plan_id, [dept, child])
    async with world.ctx.sessions.begin() as db:  # the parent was rejected; the run ended before the child
        await db.execute(
            sa.update(Operation)
            .where(Operation.id == jobs[0].op_id)
            .values(state="failed", last_error="E900 rejected (test)")
        )
    result = await world.ctx.applier().recover()
    assert result.skipped == 1 and result.total_done == 0
    assert world.workbox_requests() == 0
    async with world.ctx.sessions() as db:
        row = await db.get(Operation, jobs[1].op_id)
    assert row is not None and row.state == "skipped"
    assert "failed" in (row.last_error or "") and "E900" in (row.last_error or "")


def _dept(key: str, parent: str = "#", seq: int = 0, level: int = 0, deps: list[int] | None = None) -> Op:
    op = Op("dept", key, "create", {"name": key, "sortOrd": "0", "uprDeptExternalKey": parent})
    op.seq, op.level, op.depends_on = seq, level, deps or []
    return op


async def _new_run(world: World) -> int:
    async with world.ctx.sessions.begin() as db:
        run = SyncRun(trigger="test", started_at=utcnow(), result="running", holder="test")
        db.add(run)
        await db.flush()
        return run.id


async def test_an_operation_is_sent_once_its_own_dependencies_are_done(world: World) -> None:
    """Not when its whole level is: here the level-1 child is sent while an unrelated level-0
    operation is still in flight (with level barriers this would wait forever)."""
    applier = world.ctx.applier()
    slow, parent = _dept("k-slow", seq=1), _dept("k-parent", seq=2)
    child = _dept("k-child", "k-parent", seq=3, level=1, deps=[2])
    child_sent = asyncio.Event()
    real = applier._execute

    async def execute(job: Any) -> Any:
        if job.key == "k-slow":
            await asyncio.wait_for(child_sent.wait(), 10)
        outcome = await real(job)
        if job.key == "k-child":
            child_sent.set()
        return outcome

    applier._execute = execute  # type: ignore[method-assign]
    result = await applier.journal_and_drive(await _new_run(world), "plan-deps", [slow, parent, child])
    assert result.total_done == 3 and not result.failed
    assert set(world.state()) == {("dept", "k-slow"), ("dept", "k-parent"), ("dept", "k-child")}


async def test_a_failed_operation_skips_its_dependants_transitively_and_nothing_else(world: World) -> None:
    applier = world.ctx.applier()
    bad = _dept("k-bad", "k-does-not-exist", seq=1)  # WORKBOX refuses: unknown parent
    good = _dept("k-good", seq=2)
    child = _dept("k-bad-child", "k-bad", seq=3, level=1, deps=[1])
    grandchild = _dept("k-bad-grandchild", "k-bad-child", seq=4, level=2, deps=[3])
    other = _dept("k-good-child", "k-good", seq=5, level=2, deps=[2])
    run_id = await _new_run(world)
    result = await applier.journal_and_drive(run_id, "plan-skip", [bad, good, child, grandchild, other])
    assert [f.key for f in result.failed] == ["k-bad"]
    assert result.skipped == 2 and result.total_done == 2
    assert set(world.state()) == {("dept", "k-good"), ("dept", "k-good-child")}
    ops = {op.external_key: op for op in await _operations(world, run_id)}
    assert ops["k-bad-child"].state == ops["k-bad-grandchild"].state == "skipped"
    assert ops["k-bad-child"].sent_at is None and ops["k-bad-grandchild"].sent_at is None
    assert "#1" in (ops["k-bad-child"].last_error or "")
    assert "#3" in (ops["k-bad-grandchild"].last_error or "")
