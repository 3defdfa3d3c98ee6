"""Approving a held plan while another process leads: queued, then applied by the leader's next cycle
(which a daemon starts within seconds: tests/engine/test_review_flow.py)."""

from __future__ import annotations

import sqlalchemy as sa

from syncd.db.models import Plan
from syncd.engine.cycle import run_cycle
from syncd.service.lease import hold_lease
from tests.engine.conftest import World
from tests.support.config import COMMAND, LENIENT_DELETES, write_config
from tests.support.process import syncd_command as syncd


async def test_approve_while_another_process_leads_is_queued_for_the_leader(world: World, tmp_path) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    wave = [e for e in world.sb.company.employee_list() if e.status == "Active"][:45]
    for e in wave:
        world.sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
    held = await run_cycle(world.ctx)
    assert held.exit_code == 3 and held.plan_id

    cfg = write_config(
        tmp_path / "syncd.toml", world.sb, world.settings.database.url, base=(COMMAND, LENIENT_DELETES)
    )
    before = world.workbox_requests()
    async with hold_lease(world.settings.database.url, world.ctx.engine, period=30, wait=5) as lease:
        code, out, err = await syncd("--config", str(cfg), "approve", held.plan_id)
        assert code == 0, (out, err)
        assert "queued" in out and "within seconds" in out
        assert world.workbox_requests() == before  # nothing sent by the approving process
        async with world.ctx.sessions() as db:
            assert (await db.get(Plan, held.plan_id)).status == "queued"

        world.ctx.fencing_token = lease.token
        report = await run_cycle(world.ctx)  # the leader's next cycle
    assert report.exit_code == 0, report.message()
    assert world.workbox_requests(method="DELETE") == len(wave)
    async with world.ctx.sessions() as db:
        status = await db.scalar(sa.select(Plan.status).where(Plan.id == held.plan_id))
    assert status == "approved"
