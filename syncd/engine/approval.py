"""Held plans: storing a plan, approving it, and applying what of it is still wanted.

What a safety rule holds (:mod:`syncd.engine.hold`) is stored as a plan, with its operations, and
waits.  It can't go stale: a newer plan with other operations supersedes it (a cycle that finds the
very same operations held keeps the plan and its id), and it expires after ``sync.plan_ttl``.
``syncd approve PLAN_ID`` records who approved it and runs a cycle that re-plans from the current
sources and ledger: of the approved plan, only the operations that plan also has are applied, free of
the deletion budget (a delete of someone HR now wants is dropped, and the run says so); the rest of
the new plan is judged as in any cycle.  When another process holds the leader lease, the approval is
queued, and that process applies it, the same way, within seconds (:mod:`syncd.service.daemon`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

import structlog

from syncd import metrics
from syncd.commands import command
from syncd.db import records
from syncd.db.models import Plan, utcnow
from syncd.engine.context import SyncContext
from syncd.engine.hold import OpKey, op_key
from syncd.engine.plan import Op, plan_hash, summarize
from syncd.errors import SyncdError
from syncd.states import PlanStatus

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
    supersede: bool = True,
    ttl: float | None = None,
) -> str:
    """Store a plan (with its operations when ``keep_ops``: a held or dry-run plan); its id.

    A held plan with the same operations as one already held (within ``ttl`` seconds) is that plan:
    its id, which messages and an approver may already hold, stays valid.  Any other plan that
    changes WORKBOX supersedes the held ones (``supersede=False``: the part of a split plan that is
    applied, whose held part was just stored)."""
    digest = plan_hash(ops)
    if status is PlanStatus.HELD and ttl is not None:
        since = utcnow() - dt.timedelta(seconds=ttl)
        same = await records.same_held_plan(sessions, digest, since)
        if same is not None:
            log.info("plan.still_held", plan_id=same)
            return same
    plan_id = await records.store_plan(
        sessions,
        run_id=run_id,
        plan_hash=digest,
        ledger_hash=ledger_hash,  # of the ledger the plan was made from (approval compares it)
        status=status,
        hold_reason=reason,
        summary=summarize(ops),
        operations=[{**op.as_dict(), "before": op.before} for op in ops] if keep_ops else [],
    )
    if supersede and status is not PlanStatus.PLANNED:  # a dry run's plan changes nothing
        superseded = await records.supersede_held(sessions, plan_id)
        if superseded:
            log.warning("plan.superseded", plan_ids=superseded, by=plan_id)
    return plan_id


async def refresh_held_gauge(sessions: records.Sessions, ttl: float) -> int:
    """``syncd_held_plans`` and ``syncd_approvals_queued`` from the database (not yet expired); the
    number of queued approvals."""
    since = utcnow() - dt.timedelta(seconds=ttl)
    metrics.HELD_PLANS.set(await records.count_plans(sessions, PlanStatus.HELD, since=since))
    queued = await records.count_plans(sessions, PlanStatus.QUEUED, since=since)
    metrics.QUEUED_APPROVALS.set(queued)
    return queued


SHORT_ID = 8


async def resolve_plan_id(ctx: SyncContext, ref: str) -> str:
    """The plan an operator means: its whole id, or a unique prefix of at least 8 characters (the
    short id ``syncd runs`` shows)."""
    if await records.load_plan(ctx.sessions, ref) is not None:
        return ref
    if len(ref) < SHORT_ID:
        raise ApprovalRefused(
            f"no plan {ref!r}: give the whole id or at least {SHORT_ID} characters of it "
            f"(`{command('runs')}` lists them)"
        )
    found = await records.plan_ids_starting(ctx.sessions, ref)
    if len(found) > 1:
        several = ", ".join(found)
        raise ApprovalRefused(f"{ref!r} is the start of several plans ({several}): give more of the id")
    if not found:
        raise ApprovalRefused(f"no plan {ref!r}: list held plans with `{command('runs')}`")
    return found[0]


async def _approvable(ctx: SyncContext, plan_id: str) -> Plan:
    """The plan, if it may still be approved; else why not (marking an expired one so)."""
    plan = await records.load_plan(ctx.sessions, plan_id)
    if plan is None:
        raise ApprovalRefused(f"no plan {plan_id!r}: list held plans with `{command('runs')}`")
    status = PlanStatus(plan.status)
    if status is PlanStatus.SUPERSEDED:
        raise ApprovalRefused(
            f"plan {plan_id} is superseded by the newer plan {plan.superseded_by}: review it with "
            f"`{command('plan')}`, then approve the plan it holds "
            f"(`{command('approve', str(plan.superseded_by))}` if that one is still held)"
        )
    if not status.approvable:
        raise ApprovalRefused(f"plan {plan_id} is {plan.status}, not held: nothing to approve")
    ttl = ctx.settings.sync.seconds("plan_ttl")
    if plan.created_at < utcnow() - dt.timedelta(seconds=ttl):
        await records.set_plan_status(ctx.sessions, plan_id, PlanStatus.EXPIRED, only_from=APPROVABLE)
        await refresh_held_gauge(ctx.sessions, ttl)
        raise ApprovalRefused(
            f"plan {plan_id} expired: it was made at {plan.created_at:%Y-%m-%d %H:%M} UTC, more than "
            f"sync.plan_ttl = {ctx.settings.sync.plan_ttl} ago; `{command('plan')}` makes a fresh one"
        )
    return plan


async def request_approval(ctx: SyncContext, plan_id: str, by: str) -> None:
    """Queue the approval of a held plan for whichever process holds the leader lease: it applies the
    plan (re-checked against the sources, see :func:`exemptions`) in a cycle of its own, started
    within seconds."""
    await _approvable(ctx, plan_id)
    if not await records.set_plan_status(ctx.sessions, plan_id, PlanStatus.QUEUED, only_from=APPROVABLE):
        await _approvable(ctx, plan_id)  # changed meanwhile: say what it is now
    await records.record_approval(ctx.sessions, plan_id, by)
    log.warning("plan.approval_requested", plan_id=plan_id, approved_by=by)


async def take_queued(ctx: SyncContext) -> Plan | None:
    """The newest approval queued while another process held the lease, now ``approved`` and to be
    applied by this cycle; older queued ones are superseded by it, expired ones refused."""
    ids = await records.plan_ids(ctx.sessions, PlanStatus.QUEUED)
    chosen: Plan | None = None
    for plan_id in reversed(ids):  # newest first
        if chosen is not None:
            await records.set_plan_status(ctx.sessions, plan_id, PlanStatus.SUPERSEDED, only_from=APPROVABLE)
            continue
        try:
            chosen = await _approvable(ctx, plan_id)
        except ApprovalRefused as exc:
            log.error("plan.approval_refused", plan_id=plan_id, error=str(exc))
    if chosen is None:
        return None
    if not await records.set_plan_status(
        ctx.sessions, chosen.id, PlanStatus.APPROVED, only_from=(PlanStatus.QUEUED,)
    ):
        return None  # changed meanwhile (expired, superseded): nothing to apply
    log.warning("plan.approved", plan_id=chosen.id, approved_by=chosen.approved_by)
    return chosen


def exemptions(approved: Plan, current: Sequence[Op]) -> tuple[frozenset[OpKey], str | None]:
    """The approved plan's operations that the current plan also has (same kind, key and action):
    they are applied free of the deletion budget; and, if some of the approved ones are no longer
    wanted, a sentence saying how many and why."""
    held = {(o["kind"], o["key"], o["action"]) for o in approved.operations}
    kept = held.intersection(op_key(op) for op in current)
    gone = held - kept
    if not gone:
        return frozenset(kept), None
    by = Counter(f"{k} {a}" for k, _, a in gone)
    what = ", ".join(f"{name} {n}" for name, n in sorted(by.items()))
    return frozenset(kept), (
        f"{len(gone)} of the approved plan's {len(held)} operations dropped ({what}): the current "
        "sources and ledger no longer want them (HR changed them back, or they were applied meanwhile)"
    )


async def accept(ctx: SyncContext, plan_id: str, by: str) -> Plan:
    """Mark the held plan ``plan_id`` approved by ``by``; the plan, for a cycle to apply
    (:func:`syncd.engine.cycle.approve`)."""
    plan = await _approvable(ctx, plan_id)
    if not await records.set_plan_status(ctx.sessions, plan_id, PlanStatus.APPROVED, only_from=APPROVABLE):
        await _approvable(ctx, plan_id)  # changed meanwhile: say what it is now
    await records.record_approval(ctx.sessions, plan_id, by)
    log.warning("plan.approved", plan_id=plan_id, approved_by=by)
    return plan
