"""Issue 13 hole 6: one record never stops every cycle, on SQLite and PostgreSQL alike.

An EmployeeID longer than a staging id may be (64) is quarantined at read time as ``field_too_long``
(PostgreSQL would refuse it in ``varchar(64)``, SQLite would take it); a TerminationDate whose grace
period runs past the last representable date is ``invalid_date``.  The rest of the sync goes on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from syncd.db.models import QuarantineEntry, SyncRun
from syncd.engine.cycle import run_cycle
from tests.engine.conftest import World
from tests.engine.test_sync_e2e import _member, workbox_calls
from tests.support.config import settings_for

STAGING_ID = 64  # src_*.id is varchar(64)


def _rekey(world: World, emp: Any, new_id: str) -> None:
    company = world.sb.company
    del company.employees[emp.employee_id]
    emp.employee_id = new_id
    company.employees[new_id] = emp
    company.invalidate()


async def _quarantine(world: World) -> list[tuple[str, str, str | None, str]]:
    async with world.ctx.sessions() as db:
        rows = (await db.execute(sa.select(QuarantineEntry))).scalars().all()
    return sorted((q.source, q.kind, q.record_id, q.reason_code) for q in rows)


async def test_an_overlong_id_and_an_overflowing_date_are_quarantined_and_the_rest_syncs(
    world: World, db_url: str
) -> None:
    world.ctx.settings = settings_for(world.sb, db_url, sync={"delete_grace": 1})
    assert (await run_cycle(world.ctx)).exit_code == 0
    hired = world.sb.mutate(
        "hire",
        department_code=_member(world, 0).department_code,
        first_name="Long",
        last_name="Id",
        work_email="long.id@acme.example",
    )
    long_id = "E" + "9" * (STAGING_ID + 6)  # 71 characters
    _rekey(world, world.sb.company.employees[hired["employee_id"]], long_id)
    far, renamed = _member(world, 1), _member(world, 2)
    world.sb.mutate("terminate", employee_id=far.employee_id, termination_date="9999-12-31")
    world.sb.mutate("rename", employee_id=renamed.employee_id, last_name="StillSyncs")
    before = world.workbox_requests()
    for _ in range(2):  # every cycle, not only the first
        report = await run_cycle(world.ctx)
        assert report.exit_code == 0 and report.result == "success", report.message()
        assert await _quarantine(world) == sorted(
            [
                ("infinityhr", "employee", long_id, "field_too_long"),
                ("infinityhr", "employee", far.employee_id, "invalid_date"),
            ]
        )
    assert workbox_calls(world, before) == [("PUT", "user", renamed.employee_id)]  # far stays as it was
    assert ("user", far.employee_id) in world.state()
    reasons = {r.record_id: r.reason for r in report.rejects}
    assert "71 characters" in reasons[long_id] and "64" in reasons[long_id]
    assert "9999-12-31" in reasons[far.employee_id] and "delete_grace" in reasons[far.employee_id]
    async with world.ctx.sessions() as db:
        results = (await db.execute(sa.select(SyncRun.result).order_by(SyncRun.id))).scalars().all()
    assert list(results) == ["success"] * 3  # no run left "running" or failed


async def test_a_department_code_too_long_to_stage_is_quarantined(world: World) -> None:
    company = world.sb.company
    code = next(iter(company.departments))
    dept = company.departments.pop(code)
    long_code = "D" + "x" * STAGING_ID  # 65 characters
    dept.code = long_code
    company.departments[long_code] = dept
    for emp in company.employees.values():
        if emp.department_code == code:
            emp.department_code = long_code
    for other in company.departments.values():
        if other.parent_code == code:
            other.parent_code = long_code
    company.invalidate()
    report = await run_cycle(world.ctx)
    assert report.result != "failed", report.message()
    assert ("infinityhr", "department", long_code, "field_too_long") in await _quarantine(world)


def test_quarantine_rows_fit_their_columns_whatever_the_id() -> None:
    """record_key is varchar(64) and record_id varchar(200): a longer id is hashed / cut, never refused."""
    from syncd.engine.quarantine import rows_of
    from syncd.engine.validate import Reject

    ids = ["E" + "7" * 300, "E" + "7" * 299 + "8", "E1"]
    rows = rows_of([Reject("infinityhr", "employee", rid, "field_too_long", "long", {}) for rid in ids])
    assert len({r.key for r in rows}) == 3  # two ids alike in their first 64 characters stay apart
    assert all(len(r.key) <= 64 and len(r.record_id or "") <= 200 for r in rows)
    assert rows[2].key == rows[2].record_id == "E1"
