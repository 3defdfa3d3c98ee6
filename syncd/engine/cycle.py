"""One sync cycle: recover → pull → stage → merge → plan → (hold | apply), recorded as a run.

docs/architecture.md draws the cycle and names the module that owns each step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

import structlog

from syncd import metrics
from syncd.config import Settings
from syncd.db import engine as dbe
from syncd.db import records
from syncd.engine import approval, quarantine
from syncd.engine.context import Ledger, SyncContext
from syncd.engine.gc_tuning import relaxed_gc
from syncd.engine.hold import hold_reason
from syncd.engine.merge import Rules, Sources, merge
from syncd.engine.plan import Op, make_plan, summarize
from syncd.engine.pull import Pulled, SourceKind, pull_all
from syncd.engine.run_report import RunReport, record_finish, record_start
from syncd.engine.stage import StageOutcome, load_snapshot, stage
from syncd.errors import DatabaseError, SyncdError
from syncd.states import Kind, PlanStatus, RunResult

log = structlog.get_logger("syncd.engine")


def rules_from(settings: Settings, today: dt.date | None = None) -> Rules:
    s = settings.sync
    return Rules(
        today=today or dt.datetime.now(dt.UTC).date(), delete_grace=s.delete_grace,
        include_whosoff_only=s.include_whosoff_only, whosoff_only_department=s.whosoff_only_department,
        name_format=s.name_format, phone_precedence=s.phone_precedence,
        grade_order=tuple(s.grade_order), position_order=tuple(s.position_order),
    )  # fmt: skip


async def run_cycle(
    ctx: SyncContext, *, trigger: str = "once", dry_run: bool = False, today: dt.date | None = None
) -> RunReport:
    """One full cycle.  Never raises for a vendor or input problem: the report says what happened."""
    started = time.monotonic()
    with dbe.translate_errors(ctx.engine):
        report = await record_start(ctx.sessions, trigger, sweep=not dry_run)
    with structlog.contextvars.bound_contextvars(run_id=report.run_id):
        log.info("run.started", trigger=trigger, dry_run=dry_run)
        try:
            with dbe.translate_errors(ctx.engine), relaxed_gc():
                await _cycle(ctx, report, dry_run=dry_run, today=today)
        except SyncdError as exc:
            report.fail(str(exc), exit_code=exc.exit_code)
            log.error("run.failed", error=str(exc))
        try:
            with dbe.translate_errors(ctx.engine):
                await record_finish(ctx.sessions, report, started)
        except DatabaseError as exc:  # the journal is intact; only this run's summary row is not
            log.error("run.unrecorded", error=str(exc))
    return report


async def _cycle(ctx: SyncContext, report: RunReport, *, dry_run: bool, today: dt.date | None) -> None:
    t = time.monotonic()
    if not dry_run:
        report.recovered = await ctx.applier().recover()
        if report.recovered.aborted:
            report.fail(f"WORKBOX refused our configuration: {report.recovered.aborted}")
            return
        await approval.apply_queued(ctx)
    report.timings["recover"] = time.monotonic() - t

    # The ledger changes only when this leader settles an operation, and recovery is over: read it
    # while the sources are pulled (the database is idle then, the pull mostly waits on the network).
    ledger_read = asyncio.create_task(ctx.ledger_and_digest(), name="read the ledger")
    try:
        await _pull_to_apply(ctx, report, ledger_read, dry_run=dry_run, today=today)
    finally:
        if not ledger_read.done():
            ledger_read.cancel()
            await asyncio.wait([ledger_read])
        if not ledger_read.cancelled():
            ledger_read.exception()  # retrieved: an early return must not leave it "never retrieved"


async def _pull_to_apply(
    ctx: SyncContext,
    report: RunReport,
    ledger_read: asyncio.Task[tuple[Ledger, str]],
    *,
    dry_run: bool,
    today: dt.date | None,
) -> None:
    t = time.monotonic()
    pulled = await pull_all(ctx.infinityhr, ctx.whosoff, ctx.progress)
    report.timings["pull"] = time.monotonic() - t

    t = time.monotonic()
    outcomes = await stage(
        ctx.sessions, pulled, run_id=report.run_id, max_shrink=ctx.settings.sync.max_source_shrink,
        write=not dry_run,
    )  # fmt: skip
    report.timings["stage"] = time.monotonic() - t
    report.stale = [(o.source, o.kind, o.reason or "") for o in outcomes.values() if not o.trusted]
    for (source, kind), o in outcomes.items():
        metrics.STALE_SOURCES.labels(f"{source}:{kind}").set(0 if o.trusted else 1)
    untrusted = [key for key, o in outcomes.items() if not o.trusted]
    never = await records.never_trusted(ctx.sessions, untrusted)
    if never:
        report.fail(
            "nothing planned: no trusted read yet of " + ", ".join(never) + "; fix the source and run again",
            result=RunResult.STALE,
        )
        return

    t = time.monotonic()
    sources = await _sources(ctx, pulled, outcomes)
    ledger, digest = await ledger_read
    desired = merge(sources, ledger, rules_from(ctx.settings, today))
    del sources
    pulled.clear()  # merged: free the raw reads before planning and applying (peak memory at 100k)
    report.timings["merge"] = time.monotonic() - t
    report.rejects = desired.rejects
    report.quarantined = await quarantine.write(
        ctx.sessions, desired.rejects, report.run_id, store=not dry_run
    )

    t = time.monotonic()
    ops = make_plan(desired.objects, ledger)
    await _plan(ctx, report, ops, ledger, digest, dry_run=dry_run)
    report.timings["plan"] = time.monotonic() - t
    if not dry_run and not report.held:
        t = time.monotonic()
        assert report.plan_id is not None
        report.applied = await ctx.applier().journal_and_drive(report.run_id, report.plan_id, ops)
        report.timings["apply"] = time.monotonic() - t
        report.result = RunResult.SUCCESS
    report.settle()


async def _sources(
    ctx: SyncContext, pulled: Mapping[SourceKind, Pulled], outcomes: Mapping[SourceKind, StageOutcome]
) -> Sources:
    """What merge works from: a trusted read is what was just staged; a stale source plans from its
    last good snapshot (and keeps that snapshot's read-time rejects frozen)."""
    rejected = [r for key, p in pulled.items() if outcomes[key].trusted for r in p.rejects]
    stale = [key for key, o in outcomes.items() if not o.trusted]
    rejected += await quarantine.stage_rejects(ctx.sessions, stale)

    async def snapshot(source: str, kind: str) -> dict[str, Any]:
        if outcomes[(source, kind)].trusted:
            return pulled[(source, kind)].records
        return await load_snapshot(ctx.sessions, source, kind)

    return Sources(
        employees=await snapshot("infinityhr", "employee"),
        departments=await snapshot("infinityhr", "department"),
        wo_users=await snapshot("whosoff", "user"),
        wo_departments=await snapshot("whosoff", "department"),
        rejected=tuple(rejected),
    )


async def _plan(
    ctx: SyncContext, report: RunReport, ops: list[Op], ledger: Ledger, digest: str, *, dry_run: bool
) -> None:
    """Decide whether ``ops`` may be applied now, and store the plan."""
    s = ctx.settings.sync
    members = sum(1 for kind, _ in ledger if kind == Kind.USER)
    report.ops, report.summary = ops, summarize(ops)
    report.held = hold_reason(ops, members, max_deletes=s.max_deletes, max_delete_ratio=s.max_delete_ratio)
    status = PlanStatus.PLANNED if dry_run else (PlanStatus.HELD if report.held else PlanStatus.APPLIED)
    report.plan_id = await approval.store_plan(
        ctx.sessions, report.run_id, ops, status, report.held, digest, keep_ops=dry_run or bool(report.held)
    )
    log.info(
        "plan.made", plan_id=report.plan_id, operations=len(ops), summary=report.summary, held=report.held
    )
    if dry_run:
        report.result = RunResult.DRY_RUN
    elif report.held:
        report.result = RunResult.HELD
        log.warning("plan.held", plan_id=report.plan_id, reason=report.held)

