"""Issue 14: a held plan holds only the deletes over the budget; everything else is applied.

A wave of terminations that breaks the deletion budget must not stop new hires and updates for the
hours it takes someone to review it (unless ``sync.hold_whole_plan = true``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from syncd import metrics
from syncd.db.models import Plan
from syncd.engine.approval import refresh_held_gauge, request_approval
from syncd.engine.cycle import approve, run_cycle
from tests.engine.conftest import World


def _active(world: World) -> list[Any]:
    return [e for e in world.sb.company.employee_list() if e.status == "Active"]


def _members(world: World) -> int:
    return sum(1 for kind, _ in world.state() if kind == "user")


def _wave_and_hires(world: World, leavers: int = 45, hires: int = 3) -> None:
    for e in _active(world)[:leavers]:
        world.sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
    for _ in range(hires):
        world.sb.mutate("hire")


async def test_a_held_wave_of_deletes_does_not_hold_the_new_hires(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    members = _members(world)
    _wave_and_hires(world)

    held = await run_cycle(world.ctx)
    assert held.exit_code == 3 and held.result == "held", held.message()
    assert world.workbox_requests(method="DELETE") == 0
    assert _members(world) == members + 3  # the hires went through
    assert held.held_plan_id and held.held_plan_id == held.plan_id  # the one to approve
    message = held.message()
    assert f"45 deletes held in plan {held.held_plan_id}" in message and "applied" in message
    async with world.ctx.sessions() as db:
        plan = await db.get(Plan, held.held_plan_id)
    assert plan is not None and plan.status == "held" and plan.summary == {"user": {"delete": 45}}
    assert {op["action"] for op in plan.operations} == {"delete"}

    again = await run_cycle(world.ctx)  # nothing new: still held, nothing else to send
    assert again.result == "held" and world.workbox_requests(method="DELETE") == 0

    report = await approve(world.ctx, again.held_plan_id or "", "alice")
    assert report.exit_code == 0, report.message()
    assert world.workbox_requests(method="DELETE") == 45
    assert _members(world) == members + 3 - 45


async def test_hold_whole_plan_holds_everything(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    members = _members(world)
    world.ctx.settings = world.ctx.settings.model_copy(
        update={"sync": world.ctx.settings.sync.model_copy(update={"hold_whole_plan": True})}
    )
    _wave_and_hires(world)
    before = world.workbox_requests()
    held = await run_cycle(world.ctx)
    assert held.exit_code == 3 and world.workbox_requests() == before, held.message()
    assert _members(world) == members
    assert "sync.hold_whole_plan = true: nothing applied" in held.message()
    async with world.ctx.sessions() as db:
        plan = await db.get(Plan, held.held_plan_id or "")
    assert plan is not None and plan.summary == {"user": {"create": 3, "delete": 45}}
    report = await approve(world.ctx, plan.id, "alice")
    assert report.exit_code == 0 and _members(world) == members + 3 - 45, report.message()


async def test_a_dry_run_stores_a_held_plan_that_can_be_approved(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    _wave_and_hires(world, hires=0)
    before = world.workbox_requests()
    dry = await run_cycle(world.ctx, dry_run=True)
    assert dry.held and dry.held_plan_id and world.workbox_requests() == before
    report = await approve(world.ctx, dry.held_plan_id, "bob")
    assert report.exit_code == 0, report.message()
    assert world.workbox_requests(method="DELETE") == 45


async def test_a_queued_approval_is_counted_apart_from_held_plans(world: World) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    _wave_and_hires(world, hires=0)
    held = await run_cycle(world.ctx)
    assert held.held_plan_id
    await request_approval(world.ctx, held.held_plan_id, "carol")
    await refresh_held_gauge(world.ctx.sessions, world.settings.sync.seconds("plan_ttl"))
    assert metrics.HELD_PLANS._value.get() == 0  # type: ignore[attr-defined]
    assert metrics.QUEUED_APPROVALS._value.get() == 1  # type: ignore[attr-defined]
    async with world.ctx.sessions() as db:
        status = await db.scalar(sa.select(Plan.status).where(Plan.id == held.held_plan_id))
    assert status == "queued"


async def test_the_held_plan_keeps_its_id_while_nothing_changes(world: World) -> None:
    """By hand: `--run-once` held 45 deletes beside 3 hires; `syncd plan` afterwards (the hires
    applied, so the deletes are numbered anew) must name the same held plan, not supersede it."""
    assert (await run_cycle(world.ctx)).exit_code == 0
    _wave_and_hires(world)
    held = await run_cycle(world.ctx)
    dry = await run_cycle(world.ctx, dry_run=True)
    assert held.held_plan_id and dry.held_plan_id == held.held_plan_id
    report = await approve(world.ctx, held.held_plan_id, "dana")
    assert report.exit_code == 0 and world.workbox_requests(method="DELETE") == 45, report.message()
