"""Held plans: storing a plan, queueing an approval, and applying an approved plan.

A plan that a safety rule holds (:mod:`syncd.engine.hold`) is stored with its operations and waits.
``syncd approve PLAN_ID`` applies exactly that plan, and only while the ledger is what the plan was
made from; when another process holds the leader lease, the approval is queued and that process
applies it at the start of its next cycle.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog

from syncd import metrics
from syncd.db import records
from syncd.db.models import Plan
from syncd.engine.context import SyncContext
from syncd.engine.plan import Op, plan_hash, summarize
from syncd.engine.run_report import RunReport, record_finish, record_start
from syncd.errors import SyncdError
from syncd.states import PlanStatus, RunResult

log = structlog.get_logger("syncd.engine")


#: plan states an approval may apply: held by a safety rule, or approval queued for the leader
APPROVABLE = tuple(s for s in PlanStatus if s.approvable)


class ApprovalRefused(SyncdError):
    """The held plan cannot be applied as it is."""


async def store_plan(
    sessions: records.Sessions,
    run_id: int,
    ops: list[Op],
    status: PlanStatus,
    reason: str | None,
    ledger_hash: str,
    *,
    keep_ops: bool,
) -> str:
    """Store a plan (with its operations when ``keep_ops``: a held or dry-run plan); its id."""
    plan_id = await records.store_plan(
        sessions,
        run_id=run_id,
        plan_hash=plan_hash(ops),
        ledger_hash=ledger_hash,  # of the ledger the plan was made from (approval compares it)
        status=status,
        hold_reason=reason,
        summary=summarize(ops),
        operations=[{**op.as_dict(), "before": op.before} for op in ops] if keep_ops else [],
    )
    if status is PlanStatus.HELD:
        metrics.HELD_PLANS.set(await records.count_plans(sessions, PlanStatus.HELD))
    return plan_id


async def _approvable(sessions: records.Sessions, plan_id: str) -> Plan:
    plan = await records.load_plan(sessions, plan_id)
    if plan is None:
        raise ApprovalRefused(f"no plan {plan_id!r}: list held plans with `syncd runs`")
    if not PlanStatus(plan.status).approvable:
        raise ApprovalRefused(f"plan {plan_id} is {plan.status}, not held: nothing to approve")
    return plan


async def request_approval(ctx: SyncContext, plan_id: str) -> None:
    """Queue the approval of a held plan for whichever process holds the leader lease: it applies the
    plan (with the same ledger check) at the start of its next cycle."""
    await _approvable(ctx.sessions, plan_id)
    if not await records.set_plan_status(ctx.sessions, plan_id, PlanStatus.QUEUED, only_from=APPROVABLE):
        await _approvable(ctx.sessions, plan_id)  # changed meanwhile: say what it is now
    log.warning("plan.approval_requested", plan_id=plan_id)


async def apply_queued(ctx: SyncContext) -> list[RunReport]:
    """Apply approvals queued while another process held the lease (oldest first)."""
    reports = []
    for plan_id in await records.plan_ids(ctx.sessions, PlanStatus.QUEUED):
        try:
            reports.append(await approve(ctx, plan_id))
        except ApprovalRefused as exc:
            log.error("plan.approval_refused", plan_id=plan_id, error=str(exc))
    return reports


def _ops_of(stored: Sequence[dict[str, Any]]) -> list[Op]:
    return [
        Op(kind=o["kind"], key=o["key"], action=o["action"], body=o["body"], before=o.get("before"),
           depends_on=list(o["depends_on"]), seq=o["seq"], level=o["level"])
        for o in stored
    ]  # fmt: skip


async def approve(ctx: SyncContext, plan_id: str) -> RunReport:
    """Apply exactly the held plan ``plan_id`` if the ledger has not changed since it was made."""
    started = time.monotonic()
    plan = await _approvable(ctx.sessions, plan_id)
    report = await record_start(ctx.sessions, "approve", sweep=False)  # may run inside a cycle: no sweep
    report.plan_id = plan_id
    with structlog.contextvars.bound_contextvars(run_id=report.run_id):
        try:
            applier = ctx.applier()
            report.recovered = await applier.recover()
            if await ctx.ledger_digest() != plan.ledger_hash:
                await records.set_plan_status(ctx.sessions, plan_id, PlanStatus.REFUSED)
                raise ApprovalRefused(
                    f"plan {plan_id} was made from a ledger that has changed since (other changes were "
                    "applied): run `syncd plan` again and approve the new plan"
                )
            ops = _ops_of(plan.operations)
            report.ops, report.summary = ops, summarize(ops)
            jobs = await applier.journal(report.run_id, plan_id, ops)
            await records.set_plan_status(ctx.sessions, plan_id, PlanStatus.APPROVED)
            log.warning("plan.approved", plan_id=plan_id, operations=len(ops), summary=report.summary)
            report.applied = await applier.drive(jobs)
            report.result = RunResult.SUCCESS
            report.settle()
        except ApprovalRefused as exc:
            report.fail(str(exc))
            await record_finish(ctx.sessions, report, started)
            raise
        await record_finish(ctx.sessions, report, started)
    return report
