"""End-to-end against the sandbox over loopback HTTP, on SQLite and PostgreSQL (issue 5 acceptance)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.db.models import QuarantineEntry
from syncd.engine.approval import ApprovalRefused
from syncd.engine.context import SyncContext
from syncd.engine.cycle import approve, run_cycle
from tests.engine.conftest import World
from tests.support.config import settings_for
from tests.support.oracle import expected_directory

TODAY = dt.datetime.now(dt.UTC).date()


def workbox_calls(world: World, since: int) -> list[tuple[str, str, str]]:
    """(HTTP method, kind, key) of every WORKBOX request after the first ``since``."""
    entries = [e for e in world.sb.request_log if e["vendor"] == "workbox"][since:]
    return sorted((e["method"], e["raw_path"].split("/")[-2], e["raw_path"].split("/")[-1]) for e in entries)


async def assert_converged(world: World) -> None:
    state = world.state()
    assert state == expected_directory(world.sb.company)
    assert (await world.ctx.ledger_and_digest())[0] == state


async def test_first_sync_matches_the_sources_exactly_and_a_second_run_sends_nothing(world: World) -> None:
    report = await run_cycle(world.ctx)
    assert report.exit_code == 0, report.message()
    assert report.rejects == []
    await assert_converged(world)
    kinds = {kind for kind, _ in world.state()}
    assert kinds == {"dept", "user", "job-grade", "job-position"}

    before = world.workbox_requests()
    again = await run_cycle(world.ctx)
    assert again.exit_code == 0 and again.ops == []
    assert world.workbox_requests() == before


def _member(world: World, n: int = 0, *, shared: bool = True) -> Any:
    """The n-th active employee in an active department whose grade and title others share too."""
    company = world.sb.company
    emps = [
        e
        for e in company.employee_list()
        if e.status == "Active" and company.departments[e.department_code].is_active
    ]
    grades = [e.job_grade for e in emps]
    titles = [e.job_title for e in emps]
    pool = [
        e for e in emps if not shared or (grades.count(e.job_grade) > 2 and titles.count(e.job_title) > 2)
    ]
    return pool[n]


def _other_dept(world: World, not_code: str) -> str:
    return next(d.code for d in world.sb.company.departments.values() if d.is_active and d.code != not_code)


async def test_each_single_hr_change_yields_exactly_its_minimal_operations(world: World, db_url: str) -> None:
    # one department of four deleted is 25 %: this test is about minimal operations, not the budget
    world.ctx.settings = settings_for(world.sb, db_url, sync={"max_delete_ratio": 1.0})
    assert (await run_cycle(world.ctx)).exit_code == 0
    sb = world.sb
    e1, e2, e3, e4, e5, e6 = (_member(world, n) for n in range(6))
    renamed_dept = e2.department_code
    other_grade = next(g for g in (e.job_grade for e in sb.company.employees.values()) if g != e5.job_grade)
    dept_move_target = next(
        (d, p)
        for d in sb.company.departments.values()
        if d.is_active and d.parent_code is not None
        for p in sb.company.departments.values()
        if p.is_active and p.code not in (d.code, d.parent_code) and d.code not in sb.company.hr_chain(p.code)
    )
    cases: list[tuple[str, dict[str, Any], Any]] = [
        (
            "hire",
            {
                "department_code": e1.department_code,
                "job_grade": e1.job_grade,
                "job_title": e1.job_title,
                "first_name": "New",
                "last_name": "Hire",
                "work_email": "new.hire@acme.example",
            },
            lambda r: [("POST", "user", r["employee_id"])],
        ),
        (
            "transfer",
            {"employee_id": e2.employee_id, "department_code": _other_dept(world, e2.department_code)},
            lambda r: [("PUT", "user", e2.employee_id)],
        ),
        (
            "rename",
            {"employee_id": e3.employee_id, "last_name": "Renamed"},
            lambda r: [("PUT", "user", e3.employee_id)],
        ),
        (
            "email_change",
            {"employee_id": e4.employee_id, "work_email": "changed.address@acme.example"},
            lambda r: [("PUT", "user", e4.employee_id)],
        ),
        (
            "promote",
            {"employee_id": e5.employee_id, "job_grade": other_grade},
            lambda r: [("PUT", "user", e5.employee_id)],
        ),
        (
            "terminate",
            {"employee_id": e6.employee_id, "termination_date": "2020-01-01"},
            lambda r: [("DELETE", "user", e6.employee_id)],
        ),
        (
            "dept_create",
            {"parent_code": e1.department_code, "name": "Skunkworks"},
            lambda r: [("POST", "dept", r["department_code"])],
        ),
        (
            "dept_rename",
            {"department_code": renamed_dept, "name": "Renamed Department"},
            lambda r: [("PUT", "dept", renamed_dept)],
        ),
        (
            "dept_move",
            {"department_code": dept_move_target[0].code, "parent_code": dept_move_target[1].code},
            lambda r: [("PUT", "dept", dept_move_target[0].code)],
        ),
    ]
    created_dept = None
    for op, args, expected in cases:
        before = world.workbox_requests()
        result = sb.mutate(op, **args)
        if op == "dept_create":
            created_dept = result["department_code"]
        report = await run_cycle(world.ctx)
        assert report.exit_code == 0, (op, report.message())
        assert workbox_calls(world, before) == sorted(expected(result)), op
        await assert_converged(world)

    # deactivating a department that still has members changes nothing; an empty one is removed
    before = world.workbox_requests()
    sb.mutate("dept_deactivate", department_code=e3.department_code)
    assert (await run_cycle(world.ctx)).exit_code == 0
    assert workbox_calls(world, before) == []
    sb.mutate("dept_deactivate", department_code=created_dept)
    assert (await run_cycle(world.ctx)).exit_code == 0
    assert workbox_calls(world, before) == [("DELETE", "dept", created_dept)]
    await assert_converged(world)


async def test_infinityhr_read_failing_part_way_deletes_nothing(world: World, db_url: str) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    ledger = (await world.ctx.ledger_and_digest())[0]
    for e in list(world.sb.company.employees.values())[:30]:  # changes that would delete, were they trusted
        world.sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
    settings = settings_for(world.sb, db_url)
    settings = settings.model_copy(
        update={"infinityhr": settings.infinityhr.model_copy(update={"page_size": 20, "retry_attempts": 1})}
    )
    world.sb.faults["infinityhr"].update({"error_rate": 0.5})
    before = world.workbox_requests()
    async with SyncContext.open(settings) as ctx:
        report = await run_cycle(ctx)
    assert report.exit_code == 1 and report.result == "stale"
    assert any(source == "infinityhr" for source, _, _ in report.stale)
    assert "infinityhr" in (report.error or "")
    assert world.workbox_requests(method="DELETE") == 0
    assert world.workbox_requests() == before
    assert (await world.ctx.ledger_and_digest())[0] == ledger


async def test_half_the_employees_missing_deletes_nothing(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    ledger = (await world.ctx.ledger_and_digest())[0]
    company = world.sb.company
    keep = dict(list(company.employees.items())[: len(company.employees) // 2])
    company.employees.clear()
    company.employees.update(keep)
    company.invalidate()
    report = await run_cycle(world.ctx)
    assert report.exit_code == 1 and report.result == "stale"
    assert [(s, k) for s, k, _ in report.stale] == [("infinityhr", "employee")]
    assert "max_source_shrink" in report.stale[0][2]
    assert world.workbox_requests(method="DELETE") == 0
    assert (await world.ctx.ledger_and_digest())[0] == ledger


async def test_whosoff_read_failing_changes_nothing(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    before = world.workbox_requests()
    world.sb.faults["whosoff"].update({"error_rate": 1.0})
    report = await run_cycle(world.ctx)
    assert report.exit_code == 1
    assert {s for s, _, _ in report.stale} == {"whosoff"}
    assert world.workbox_requests() == before  # phones WhosOff filled in are not removed


async def test_termination_wave_is_held_then_approved(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    members = [k for k, _ in world.state() if k == "user"]
    wave = [e for e in world.sb.company.employee_list() if e.status == "Active"][: len(members) // 5]
    for e in wave:
        world.sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
    before = world.workbox_requests()
    held = await run_cycle(world.ctx)
    assert held.exit_code == 3 and held.result == "held"
    assert held.held and str(len(wave)) in held.held and "max_delete_ratio" in held.held
    assert f"syncd approve {held.plan_id}" in held.message()
    assert world.workbox_requests() == before  # nothing applied

    assert held.plan_id is not None
    approved = await approve(world.ctx, held.plan_id, "test")
    assert approved.exit_code == 0, approved.message()
    assert world.workbox_requests(method="DELETE") == len(wave)
    await assert_converged(world)
    with pytest.raises(ApprovalRefused, match="not held"):
        await approve(world.ctx, held.plan_id, "test")


async def test_approval_refuses_a_plan_a_newer_one_superseded(world: World, db_url: str) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    for e in [e for e in world.sb.company.employee_list() if e.status == "Active"][:50]:
        world.sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
    held = await run_cycle(world.ctx)
    assert held.exit_code == 3 and held.plan_id
    lenient = settings_for(world.sb, db_url, sync={"max_deletes": 1000, "max_delete_ratio": 1.0})
    async with SyncContext.open(lenient) as ctx:
        assert (await run_cycle(ctx)).exit_code == 0  # another run applied changes meanwhile
    before = world.workbox_requests()
    with pytest.raises(ApprovalRefused, match="superseded by the newer plan"):
        await approve(world.ctx, held.plan_id, "test")
    assert world.workbox_requests() == before


async def test_duplicate_email_is_quarantined_and_everything_else_syncs(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    a, b, c = _member(world, 0), _member(world, 1), _member(world, 2)
    a.work_email = "  " + b.work_email.upper()  # same address, different case and spacing
    world.sb.company.invalidate()
    world.sb.mutate("rename", employee_id=c.employee_id, last_name="StillSyncs")
    before = world.workbox_requests()
    report = await run_cycle(world.ctx)
    assert report.exit_code == 0, report.message()
    assert report.quarantined == 1
    assert workbox_calls(world, before) == [("PUT", "user", c.employee_id)]
    async with world.ctx.sessions() as db:
        rows = (await db.execute(sa.select(QuarantineEntry))).scalars().all()
    assert [(q.record_id, q.reason_code) for q in rows] == [(a.employee_id, "duplicate_email")]
    assert b.employee_id in rows[0].reason and "keeps it" in rows[0].reason
    assert world.state()[("user", a.employee_id)]["emailAddr"] != b.work_email.lower()  # a left as it was

    # the source fixes it: the record leaves the quarantine and syncs
    a.work_email = "fixed.address@acme.example"
    world.sb.company.invalidate()
    report = await run_cycle(world.ctx)
    assert report.exit_code == 0 and report.quarantined == 0
    await assert_converged(world)


async def test_duplicate_email_on_first_sync_quarantines_all_holders(world: World) -> None:
    a, b = _member(world, 0), _member(world, 1)
    a.work_email = b.work_email
    world.sb.company.invalidate()
    report = await run_cycle(world.ctx)
    assert report.exit_code == 0
    assert sorted(r.record_id for r in report.rejects) == sorted([a.employee_id, b.employee_id])
    assert all("none of them is in WORKBOX yet" in r.reason for r in report.rejects)
    state = world.state()
    assert ("user", a.employee_id) not in state and ("user", b.employee_id) not in state
    expected = expected_directory(world.sb.company)
    expected.pop(("user", a.employee_id))
    expected.pop(("user", b.employee_id))
    assert {k for k in state if k[0] == "user"} == {k for k in expected if k[0] == "user"}


async def test_plan_writes_no_staging_state_the_leader_owns(world: World) -> None:
    """A dry run holds no lease, so it must not write the snapshot tables or the quarantine."""
    from syncd.db.models import InfinityHREmployee

    assert (await run_cycle(world.ctx)).exit_code == 0
    target = _member(world, 0)

    async def staged_hash() -> str | None:
        async with world.ctx.sessions() as db:
            row = await db.get(InfinityHREmployee, target.employee_id)
        return row.content_hash if row else None

    before = await staged_hash()
    world.sb.mutate("rename", employee_id=target.employee_id, last_name="Planned")
    plan = await run_cycle(world.ctx, dry_run=True)
    assert plan.result == "dry-run" and plan.summary == {"user": {"update": 1}}
    assert await staged_hash() == before  # nothing written by the dry run
    applied = await run_cycle(world.ctx)
    assert applied.summary == {"user": {"update": 1}} and await staged_hash() != before
