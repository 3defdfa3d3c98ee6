"""Issue 18: incremental reads between full reads (``sync.full_every``, syncd/engine/reads.py).

Between full reads a cycle asks InfinityHR only for the employees changed since the last trusted read
(the sandbox serves ``GetEmployeesByDateRange``) and its departments, and does not read WhosOff.  A
change seen only in such a read is applied; absence from it never deletes; a person HR purged is
deleted by the next full read, within the deletion budget; a read of changes that fails leaves the
last trusted snapshot in force and the next one reads the same changes again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.db.models import SourceState, SyncRun
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.states import RunResult
from tests.engine.conftest import World
from tests.support.config import settings_for
from tests.support.workbox import workbox_state

CHANGED = "GetEmployeesByDateRange"


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    """The engine world with incremental reads on (the default cadence, which TESTS turns off) and a
    deletion budget of 5 a plan."""
    async with run_sandbox(SandboxOptions(employees=120, seed=3, port=0)) as sb:
        settings = settings_for(sb, db_url, sync={"full_every": "6h", "max_deletes": 5})
        async with SyncContext.open(settings) as ctx:
            yield World(sb, settings, ctx)


def _calls(sb: Sandbox, op: str) -> int:
    return sb.request_log.count(vendor="infinityhr", op=op)


def _member(sb: Sandbox, employee_id: str) -> dict[str, Any] | None:
    return workbox_state(sb).get(("user", employee_id))  # a member's external key is its EmployeeID


def _active(sb: Sandbox, n: int) -> list[str]:
    return [e.employee_id for e in sb.company.employee_list() if e.status == "Active"][:n]


async def _full_read_due(world: World) -> None:
    """As if the last full read began seven hours ago."""
    async with world.ctx.sessions.begin() as db:
        await db.execute(
            sa.update(SourceState).values(last_full_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=7))
        )


async def test_a_change_seen_only_in_a_read_of_changes_is_applied(world: World) -> None:
    first = await run_cycle(world.ctx)
    assert first.exit_code == 0 and first.reads["infinityhr:employee"] == "full"
    full_reads, whosoff = _calls(world.sb, "GetEmployeesAll"), world.sb.request_log.count(vendor="whosoff")
    eid = _active(world.sb, 1)[0]
    world.sb.mutate("rename", employee_id=eid, first_name="Ödön", last_name="Incremental")

    report = await run_cycle(world.ctx)

    assert report.exit_code == 0, report.message()
    assert report.reads == {
        "infinityhr:department": "full", "infinityhr:employee": "changes",
        "whosoff:department": "reuse", "whosoff:user": "reuse",
    }  # fmt: skip
    assert _calls(world.sb, "GetEmployeesAll") == full_reads, "no full read between full reads"
    assert _calls(world.sb, CHANGED) == 1
    assert world.sb.request_log.count(vendor="whosoff") == whosoff, "WhosOff is read with the full reads"
    assert report.summary == {"user": {"update": 1}}
    member = _member(world.sb, eid)
    assert member is not None and "Incremental" in str(member), member


async def test_absence_from_a_read_of_changes_never_deletes_and_the_next_full_read_does(
    world: World,
) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    purged, terminated = _active(world.sb, 2)
    world.sb.mutate("delete", employee_id=purged)  # gone from HR: absent from every read of changes
    world.sb.mutate("terminate", employee_id=terminated, termination_date="2020-01-01")

    delta = await run_cycle(world.ctx)

    assert delta.exit_code == 0 and delta.reads["infinityhr:employee"] == "changes", delta.message()
    assert delta.summary == {"user": {"delete": 1}}, "the termination seen in the changes is applied"
    assert _member(world.sb, terminated) is None
    assert _member(world.sb, purged) is not None, "absence from a read of changes deleted someone"
    quiet = await run_cycle(world.ctx)
    assert quiet.summary == {} and _member(world.sb, purged) is not None

    await _full_read_due(world)
    full = await run_cycle(world.ctx)

    assert full.reads["infinityhr:employee"] == "full" and full.exit_code == 0, full.message()
    assert full.summary == {"user": {"delete": 1}}
    assert _member(world.sb, purged) is None, "the full read deletes the person HR purged"


async def test_a_purge_wave_found_by_the_full_read_is_held_by_the_deletion_budget(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    wave = _active(world.sb, world.settings.sync.max_deletes + 1)  # 5 % of the records: not a shrink
    for eid in wave:
        world.sb.mutate("delete", employee_id=eid)
    world.sb.mutate("rename", employee_id=_active(world.sb, 1)[0], last_name="Between")
    assert (await run_cycle(world.ctx)).summary == {"user": {"update": 1}}  # nothing deleted between

    await _full_read_due(world)
    full = await run_cycle(world.ctx)

    assert full.result == "held", full.message()
    assert full.held_ops and all(op.action == "delete" for op in full.held_ops)
    assert all(_member(world.sb, eid) is not None for eid in wave), "a held deletion was sent"


async def test_a_failed_read_of_changes_falls_back_to_the_last_trusted_snapshot(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    members = sum(1 for kind, _ in workbox_state(world.sb) if kind == "user")
    eid = _active(world.sb, 1)[0]
    world.sb.mutate("rename", employee_id=eid, last_name="Missed")
    world.sb.faults["infinityhr"].update({"error_rate": 1.0})

    failed = await run_cycle(world.ctx)

    assert failed.result == "stale", failed.message()
    assert {s[:2] for s in failed.stale} == {("infinityhr", "employee"), ("infinityhr", "department")}
    assert failed.summary == {}, "planned from the last trusted snapshot: nothing changes, nothing deleted"
    assert sum(1 for kind, _ in workbox_state(world.sb) if kind == "user") == members
    world.sb.faults["infinityhr"].update({"error_rate": 0.0})

    again = await run_cycle(world.ctx)  # the same range again: the change made before the failure

    assert again.exit_code == 0 and again.reads["infinityhr:employee"] == "changes", again.message()
    assert again.summary == {"user": {"update": 1}}
    member = _member(world.sb, eid)
    assert member is not None and "Missed" in str(member)


async def test_a_full_read_on_request_deletes_a_purged_person_between_full_reads(world: World) -> None:
    """``syncd --run-once --full-read`` (and ``plan --full-read``): the operator need not wait."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    purged = _active(world.sb, 1)[0]
    world.sb.mutate("delete", employee_id=purged)
    preview = await run_cycle(world.ctx, dry_run=True, full_read=True)
    assert preview.reads["infinityhr:employee"] == "full" and preview.summary == {"user": {"delete": 1}}

    report = await run_cycle(world.ctx, full_read=True)

    assert report.reads["whosoff:user"] == "full" and report.exit_code == 0, report.message()
    assert _member(world.sb, purged) is None
    after = await run_cycle(world.ctx)
    assert after.reads["infinityhr:employee"] == "changes", "the full read restarted the cadence"


async def test_a_record_unreadable_in_a_read_of_changes_stays_frozen_until_fixed(world: World) -> None:
    """A changed record the read cannot use is quarantined and its member frozen (kept as pushed, never
    deleted), and stays so in the reads of changes after, which do not mention it again."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    emp = next(e for e in world.sb.company.employee_list() if e.status == "Active")
    before = _member(world.sb, emp.employee_id)
    emp.status, emp.last_modified = "Suspended", dt.datetime.now(dt.UTC)  # a value no status maps

    for cycle in range(2):  # the read that sees it, and one that does not mention it any more
        report = await run_cycle(world.ctx)
        assert report.reads["infinityhr:employee"] == "changes"
        assert [r.record_id for r in report.rejects] == [emp.employee_id], (cycle, report.rejects)
        assert report.summary == {} and _member(world.sb, emp.employee_id) == before
        emp.last_modified = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)  # out of the next range
    assert world.sb.request_log.count(vendor="infinityhr", op=CHANGED) == 2

    emp.status, emp.last_modified = "Active", dt.datetime.now(dt.UTC)
    fixed = await run_cycle(world.ctx)
    assert fixed.rejects == [] and fixed.quarantined == 0, fixed.rejects
    assert _member(world.sb, emp.employee_id) == before


async def test_after_a_run_that_did_not_finish_the_next_reads_in_full(world: World) -> None:
    """A run stopped between staging a read and recording its rejects could leave a record neither
    staged nor quarantined: the reads of changes must not start from that, so the next run reads all."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    async with world.ctx.sessions.begin() as db:
        last = await db.scalar(sa.select(SyncRun).order_by(SyncRun.id.desc()).limit(1))
        assert last is not None
        last.result = RunResult.INTERRUPTED

    report = await run_cycle(world.ctx)

    assert report.reads["infinityhr:employee"] == "full" and report.exit_code == 0, report.message()
    assert (await run_cycle(world.ctx)).reads["infinityhr:employee"] == "changes"
