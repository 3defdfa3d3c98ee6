"""Issue 13: no path deletes a person whom the current HR data still wants (SQLite and PostgreSQL).

Each test reproduces one hole against the sandbox: deletions spread over many cycles (a window
budget), approving a stale plan, blind replay of pending deletes, the clock, deletes of departments,
and the held-plans signal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from syncd import metrics
from syncd.db.models import Operation, Plan, SyncRun, utcnow
from syncd.engine.approval import ApprovalRefused
from syncd.engine.cycle import approve, run_cycle
from tests.engine.conftest import World

TODAY = dt.datetime.now(dt.UTC).date()


def _active(world: World) -> list[Any]:
    return [e for e in world.sb.company.employee_list() if e.status == "Active"]


def _terminate(world: World, people: list[Any], when: str = "2020-01-01") -> None:
    for e in people:
        world.sb.mutate("terminate", employee_id=e.employee_id, termination_date=when)


def _reinstate(world: World, people: list[Any]) -> None:
    for e in people:
        world.sb.mutate("set_status", employee_id=e.employee_id, status="Active")


def _members(world: World) -> int:
    return sum(1 for kind, _ in world.state() if kind == "user")


# ------------------------------------------------------------------------------ 1. salami deletions


async def test_deletions_spread_over_cycles_are_held_once_the_window_budget_is_spent(world: World) -> None:
    """Hole 1: each cycle removes just under the per-plan limit; the window budget holds the drain."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    start = _members(world)
    budget = int(start * world.settings.sync.max_delete_ratio)  # 10 % of the members at the window's start
    held = None
    for _ in range(30):
        wave = _active(world)[: max(1, int(_members(world) * 0.1) - 1)]  # under the per-plan ratio
        _terminate(world, wave)
        report = await run_cycle(world.ctx)
        if report.result == "held":
            held = report
            break
        assert report.exit_code == 0, report.message()
    deleted = world.workbox_requests(method="DELETE")
    assert held is not None, f"{deleted} members deleted over 30 cycles, never held"
    assert deleted <= budget
    assert held.held and "sync.delete_window = 24h" in held.held and "without approval" in held.held
    before = world.workbox_requests()
    again = await run_cycle(world.ctx)  # nothing changed: still held, still nothing sent
    assert again.result == "held" and world.workbox_requests() == before


# --------------------------------------------------------------------------- 2. approving stale plans


async def _held_wave(world: World, n: int = 20) -> tuple[list[Any], str]:
    assert (await run_cycle(world.ctx)).exit_code == 0
    wave = _active(world)[:n]
    _terminate(world, wave)
    held = await run_cycle(world.ctx)
    assert held.result == "held" and held.plan_id, held.message()
    return wave, held.plan_id


async def test_approving_after_hr_reinstated_everyone_deletes_nobody(world: World) -> None:
    """Hole 2: approval re-plans from the current sources: deletes of people HR wants are dropped."""
    wave, plan_id = await _held_wave(world)
    _reinstate(world, wave)
    report = await approve(world.ctx, plan_id, "alice")
    assert report.exit_code == 0, report.message()
    assert world.workbox_requests(method="DELETE") == 0
    n = len(wave)
    assert report.dropped and f"{n} of the approved plan's {n} operations dropped" in report.dropped
    assert "user delete" in report.message()
    async with world.ctx.sessions() as db:
        plan = await db.get(Plan, plan_id)
    assert plan is not None and plan.status == "approved" and plan.approved_by == "alice"
    assert plan.approved_at is not None


async def test_a_held_plan_is_superseded_by_newer_cycles_and_refused(world: World) -> None:
    """Hole 2 as reproduced: held, HR reinstated, two clean cycles, then the old plan approved."""
    wave, plan_id = await _held_wave(world)
    _reinstate(world, wave)
    for _ in range(2):
        assert (await run_cycle(world.ctx)).exit_code == 0
    with pytest.raises(ApprovalRefused, match="superseded by the newer plan"):
        await approve(world.ctx, plan_id, "alice")
    assert world.workbox_requests(method="DELETE") == 0


async def test_an_expired_plan_is_refused(world: World) -> None:
    _, plan_id = await _held_wave(world)
    async with world.ctx.sessions.begin() as db:
        await db.execute(
            sa.update(Plan).where(Plan.id == plan_id).values(created_at=utcnow() - dt.timedelta(hours=25))
        )
    with pytest.raises(ApprovalRefused, match=r"expired.*sync\.plan_ttl = 24h"):
        await approve(world.ctx, plan_id, "alice")
    async with world.ctx.sessions() as db:
        assert (await db.get(Plan, plan_id)).status == "expired"  # type: ignore[union-attr]
    assert world.workbox_requests(method="DELETE") == 0


async def test_approval_applies_what_is_still_wanted(world: World) -> None:
    wave, plan_id = await _held_wave(world)
    _reinstate(world, wave[:5])
    report = await approve(world.ctx, plan_id, "bob")
    assert report.exit_code == 0, report.message()
    assert world.workbox_requests(method="DELETE") == len(wave) - 5
    assert report.dropped and "5 of the approved plan's" in report.dropped


# ------------------------------------------------------------------------------ 3. blind replay


async def test_pending_deletes_of_reinstated_people_are_superseded_not_sent(world: World) -> None:
    """Hole 3: WORKBOX 503 leaves 5 deletes pending; HR reinstates them; recovery must not send them."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    wave = _active(world)[:5]
    _terminate(world, wave)
    world.sb.faults["workbox"].update({"error_rate": 1.0, "error_status": 503})
    failed = await run_cycle(world.ctx)
    assert failed.applied is not None and failed.applied.pending == len(wave), failed.message()
    world.sb.faults["workbox"].update({"error_rate": 0.0, "error_status": None})
    _reinstate(world, wave)
    before = world.workbox_requests(method="DELETE")
    report = await run_cycle(world.ctx)
    assert report.exit_code == 0, report.message()
    assert world.workbox_requests(method="DELETE") == before  # no delete reached WORKBOX
    assert "recovered from earlier runs: user delete superseded 5" in report.message()
    assert report.summary == {}  # nothing to re-create: they were never deleted
    async with world.ctx.sessions() as db:
        states = (await db.execute(sa.select(Operation.state).where(Operation.action == "delete"))).scalars()
        assert set(states) == {"superseded"}
        run = await db.get(SyncRun, report.run_id)
    assert run is not None and run.counts["recovered"] == {"user": {"delete": {"superseded": 5}}}


async def test_pending_deletes_written_by_hand_are_not_sent(world: World) -> None:
    """Hole 3: 200 pending deletes that no plan made (written into the journal by hand)."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    keys = [key for kind, key in world.state() if kind == "user"]
    now = utcnow()
    async with world.ctx.sessions.begin() as db:
        run = SyncRun(trigger="test", started_at=now, result="failed", holder="test")
        db.add(run)
        await db.flush()
        for i in range(200):
            db.add(Operation(
                run_id=run.id, plan_id=None, seq=i, level=0, kind="user", external_key=keys[i % len(keys)],
                action="delete", body=None, depends_on=[], state="pending", created_at=now, updated_at=now,
            ))  # fmt: skip
    report = await run_cycle(world.ctx)
    assert report.exit_code == 0, report.message()
    assert world.workbox_requests(method="DELETE") == 0
    assert "user delete superseded 200" in report.message()


async def test_pending_deletes_beyond_the_budget_are_held_not_replayed(world: World) -> None:
    """Hole 3: pending deletes the current plan still wants count toward the budget."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    wave = _active(world)[:30]  # 25 % of the members: over the budget
    _terminate(world, wave)
    now = utcnow()
    async with world.ctx.sessions.begin() as db:  # as if a lenient earlier run had journaled them
        run = SyncRun(trigger="test", started_at=now, result="failed", holder="test")
        db.add(run)
        await db.flush()
        plan = Plan(id="p-lenient", run_id=run.id, created_at=now, plan_hash="x", ledger_hash="x",
                    status="applied", summary={"user": {"delete": 30}}, operations=[])  # fmt: skip
        db.add(plan)
        for i, e in enumerate(wave):
            db.add(Operation(
                run_id=run.id, plan_id=plan.id, seq=i, level=0, kind="user", external_key=e.employee_id,
                action="delete", body=None, depends_on=[], state="pending", created_at=now, updated_at=now,
            ))  # fmt: skip
    report = await run_cycle(world.ctx)
    assert report.result == "held", report.message()
    assert world.workbox_requests(method="DELETE") == 0
    assert report.recovered is not None and report.recovered.superseded == 30


# ------------------------------------------------------------------------------------- 7. the clock


async def test_a_clock_set_back_does_not_recreate_former_employees(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    left = _active(world)[:3]
    _terminate(world, left, (TODAY - dt.timedelta(days=30)).isoformat())
    assert (await run_cycle(world.ctx)).exit_code == 0
    assert world.workbox_requests(method="DELETE") == 3
    posts = world.workbox_requests(method="POST")
    report = await run_cycle(world.ctx, today=TODAY - dt.timedelta(days=365))
    assert report.result == "held" and report.held and "set back" in report.held, report.message()
    assert world.workbox_requests(method="POST") == posts


async def test_a_clock_set_forward_does_not_delete_people_in_their_notice_period(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    _terminate(world, _active(world)[:3], (TODAY + dt.timedelta(days=30)).isoformat())
    assert (await run_cycle(world.ctx)).exit_code == 0
    assert world.workbox_requests(method="DELETE") == 0
    report = await run_cycle(world.ctx, today=TODAY + dt.timedelta(days=3650))
    assert report.result == "held" and report.held and "sync.max_clock_jump = 2d" in report.held
    assert world.workbox_requests(method="DELETE") == 0


# ---------------------------------------------------------------- 8. departments, grades, positions


async def test_deleting_departments_is_held(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    depts = sum(1 for kind, _ in world.state() if kind == "dept")
    empty = world.sb.mutate("dept_create", parent_code=None, name="Short-lived")
    assert (await run_cycle(world.ctx)).exit_code == 0
    world.sb.mutate("dept_deactivate", department_code=empty["department_code"])
    report = await run_cycle(world.ctx)
    assert report.result == "held" and report.held and "departments" in report.held, report.message()
    assert f"of {depts + 1} departments" in report.held
    assert world.workbox_requests(method="DELETE") == 0


# ------------------------------------------------------------------------------- 10. the signals


async def test_held_plans_gauge_follows_the_database(world: World) -> None:
    wave, plan_id = await _held_wave(world)
    assert metrics.HELD_PLANS._value.get() == 1  # type: ignore[attr-defined]
    metrics.HELD_PLANS.set(7)  # as a process that just started would have it
    _reinstate(world, wave)
    report = await approve(world.ctx, plan_id, "carol")
    assert report.exit_code == 0, report.message()
    assert metrics.HELD_PLANS._value.get() == 0  # type: ignore[attr-defined]


async def test_a_source_drained_a_little_per_cycle_goes_stale(world: World) -> None:
    """Hole 1, the source-shrink guard: each read shrinks by less than sync.max_source_shrink against
    the previous one, but the window's first read catches the drain."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    lenient = world.ctx.settings.model_copy(
        update={
            "sync": world.ctx.settings.sync.model_copy(update={"max_deletes": 1000, "max_delete_ratio": 1.0})
        }
    )
    world.ctx.settings = lenient  # the deletion budget is not what this test is about
    for _ in range(5):
        employees = world.sb.company.employee_list()
        for e in employees[: int(len(employees) * 0.08)]:  # 8 % purged from HR per cycle
            world.sb.mutate("delete", employee_id=e.employee_id)
        report = await run_cycle(world.ctx)
        if report.result == "stale":
            break
        assert report.exit_code == 0, report.message()
    assert report.result == "stale", report.message()
    assert report.error and "sync.delete_window's start" in report.error


async def test_syncd_runs_shows_who_approved(world: World) -> None:
    """Hole 11: the approval is recorded (who, when) and `syncd runs` shows it."""
    import io

    from rich.console import Console

    from syncd import report as report_mod
    from syncd.db import history

    _, plan_id = await _held_wave(world, 15)
    await approve(world.ctx, plan_id, "dana@example.com")
    rows = await history.recent_runs(world.ctx.sessions)
    assert rows[0]["trigger"] == "approve" and rows[0]["approved_by"] == "dana@example.com"
    out = io.StringIO()
    report_mod.print_runs(rows, [], Console(file=out, width=250))
    assert "dana@example.com at " in out.getvalue()


async def test_a_run_that_raises_is_recorded_as_failed_not_left_running(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hole 6: an unexpected exception in merge fails the run on record (the next run is not blocked)."""
    import syncd.engine.cycle as cycle_mod

    def broken(*_: Any) -> Any:
        raise RuntimeError("a bug in merge")

    monkeypatch.setattr(cycle_mod, "merge", broken)
    with pytest.raises(RuntimeError):
        await run_cycle(world.ctx)
    async with world.ctx.sessions() as db:
        run = (await db.execute(sa.select(SyncRun).order_by(SyncRun.id.desc()))).scalars().first()
    assert run is not None and run.result == "failed" and "internal error: RuntimeError" in (run.error or "")
    monkeypatch.undo()
    assert (await run_cycle(world.ctx)).exit_code == 0


async def test_pending_deletes_of_an_approved_plan_are_re_driven_not_held_again(world: World) -> None:
    """Deletes someone approved do not use the budget, in recovery either."""
    wave, plan_id = await _held_wave(world)
    world.sb.faults["workbox"].update({"error_rate": 1.0, "error_status": 503})
    approved = await approve(world.ctx, plan_id, "erin")
    assert approved.applied is not None and approved.applied.pending == len(wave), approved.message()
    world.sb.faults["workbox"].update({"error_rate": 0.0, "error_status": None})
    report = await run_cycle(world.ctx)
    assert report.exit_code == 0, report.message()
    deleted = sum(1 for e in world.sb.request_log.matching("workbox", "DELETE", None, None, None, None)
                  if e["status"] < 300)  # fmt: skip
    assert deleted == len(wave)
    assert f"user delete done {len(wave)}" in report.message()
