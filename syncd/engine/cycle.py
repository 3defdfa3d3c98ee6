"""One sync cycle: recover → pull → stage → merge → plan → (hold | apply), recorded as a run.

docs/architecture.md draws the cycle and names the module that owns each step.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from syncd import metrics
from syncd.commands import command
from syncd.config import Settings
from syncd.db import engine as dbe
from syncd.db import identity, records, target
from syncd.db.models import Plan
from syncd.engine import approval, collisions, quarantine, reassert
from syncd.engine.context import Ledger, SyncContext
from syncd.engine.gc_tuning import relaxed_gc
from syncd.engine.hold import Limits, OpKey, Window, budget_reason, decide, op_key
from syncd.engine.journal import Job
from syncd.engine.merge import Collided, Desired, Rules, Sources, merge
from syncd.engine.plan import Op, make_plan, summarize
from syncd.engine.pull import Pulled, SourceKind, pull_all
from syncd.engine.reads import SOURCE_KINDS, ReadMode, Reads, overlay, plan_reads
from syncd.engine.run_report import RunReport, record_finish, record_start
from syncd.engine.stage import StageOutcome, load_snapshot, stage
from syncd.errors import DatabaseError, SyncdError
from syncd.states import Action, Kind, PlanStatus, RunResult

log = structlog.get_logger("syncd.engine")


def rules_from(settings: Settings, today: dt.date | None = None) -> Rules:
    s = settings.sync
    return Rules(
        today=today or dt.datetime.now(dt.UTC).date(), delete_grace=s.delete_grace,
        include_whosoff_only=s.include_whosoff_only, whosoff_only_department=s.whosoff_only_department,
        name_format=s.name_format, phone_precedence=s.phone_precedence,
        grade_order=tuple(s.grade_order), position_order=tuple(s.position_order),
        member_fields=tuple(sorted(settings.workbox.member_defaults.items())),
    )  # fmt: skip


async def run_cycle(
    ctx: SyncContext,
    *,
    trigger: str = "once",
    dry_run: bool = False,
    today: dt.date | None = None,
    approved: Plan | None = None,
    reconcile: frozenset[str] | None = None,
    full_read: bool = False,
) -> RunReport:
    """One full cycle (``approved``: a held plan someone approved, applied as far as it is still
    wanted; ``reconcile``: the kinds re-asserted whole, ``syncd reconcile``; given at all, even empty,
    it also tries every member a collision held back, :mod:`syncd.engine.collisions`; ``full_read``:
    both sources read whole, whatever ``sync.full_every`` says).  Never raises
    for a vendor or input problem: the report says what happened."""
    started = time.monotonic()
    with dbe.translate_errors(ctx.engine):
        report = await record_start(ctx.sessions, trigger, sweep=not dry_run)
    ctx.last_report = report
    with structlog.contextvars.bound_contextvars(run_id=report.run_id):
        log.info("run.started", trigger=trigger, dry_run=dry_run)
        try:
            with dbe.translate_errors(ctx.engine), relaxed_gc():
                await _cycle(
                    ctx, report, today or dt.datetime.now(dt.UTC).date(), dry_run=dry_run, approved=approved,
                    reconcile=reconcile, full_read=full_read,
                )  # fmt: skip
                await identity.check(ctx.engine, ctx.database)  # still the database we opened?
        except SyncdError as exc:
            report.fail(str(exc), exit_code=exc.exit_code)
            log.error("run.failed", error=str(exc))
        except asyncio.CancelledError:  # Ctrl-C, or a daemon's shutdown: recorded when it happened
            await _interrupted(ctx, report)
            raise
        except Exception as exc:  # a bug must not leave the run "running" (and fail every cycle after)
            report.fail(f"internal error: {type(exc).__name__}: {exc}")
            log.exception("run.crashed")
            raise
        finally:
            try:
                with dbe.translate_errors(ctx.engine):
                    await record_finish(ctx.sessions, report, started)
                    await approval.refresh_held_gauge(ctx.sessions, ctx.settings.sync.seconds("plan_ttl"))
            except DatabaseError as exc:  # the journal is intact; only this run's summary row is not
                log.error("run.unrecorded", error=str(exc))
    return report


async def _interrupted(ctx: SyncContext, report: RunReport) -> None:
    """Mark the run interrupted, counting what its journal holds (the next run re-drives it)."""
    with contextlib.suppress(Exception):  # the database may be what stopped us: the sweep then records it
        report.interrupted_ops = await records.run_op_states(ctx.sessions, report.run_id)
    report.fail(report.interrupted_message(), result=RunResult.INTERRUPTED)
    log.warning("run.interrupted", planned=len(report.ops), journaled=report.interrupted_ops)


async def approve(ctx: SyncContext, plan_id: str, by: str) -> RunReport:
    """``syncd approve``: mark the held plan approved by ``by`` and apply it in a cycle that re-plans
    from the current sources and ledger (:func:`syncd.engine.approval.exemptions`)."""
    plan = await approval.accept(ctx, plan_id, by)
    return await run_cycle(ctx, trigger="approve", approved=plan)


async def _cycle(
    ctx: SyncContext,
    report: RunReport,
    today: dt.date,
    *,
    dry_run: bool,
    approved: Plan | None,
    reconcile: frozenset[str] | None,
    full_read: bool,
) -> None:
    # The ledger changes only when this leader settles an operation: read it while the sources are
    # pulled (the database is idle then, the pull mostly waits on the network).
    ledger_read = asyncio.create_task(ctx.ledger_and_digest(), name="read the ledger")
    try:
        # an approval and a reconcile are judged against a full read, whatever the cadence says
        full = full_read or approved is not None or reconcile is not None
        await _pull_to_apply(
            ctx, report, ledger_read, today, dry_run=dry_run, approved=approved, reconcile=reconcile,
            full_read=full,
        )  # fmt: skip
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
    today: dt.date,
    *,
    dry_run: bool,
    approved: Plan | None,
    reconcile: frozenset[str] | None,
    full_read: bool,
) -> None:
    collided = await collisions.load(ctx.sessions, retry_all=reconcile is not None)
    reads = await plan_reads(ctx.sessions, ctx.settings, report.run_id, full=full_read)
    sources = await _pull_and_stage(ctx, report, collided, reads, dry_run=dry_run)
    if sources is None:
        return
    ledger, digest = await ledger_read
    report.ledger_size = len(ledger)  # at the start: adoption is judged against it (run_report)
    desired = await _merge(ctx, report, sources, ledger, today, dry_run=dry_run)
    if dry_run:
        report.desired = desired.objects

    if not dry_run:
        t = time.monotonic()
        if await _recover(ctx, report, desired, ledger):
            # recovery changed the ledger, and so which quarantined records are frozen: merge again
            ledger, digest = await ctx.ledger_and_digest()
            desired = await _merge(ctx, report, sources, ledger, today, dry_run=dry_run)
        report.timings["recover"] = time.monotonic() - t
        if report.recovered and report.recovered.aborted:
            report.fail(f"WORKBOX refused our configuration: {report.recovered.aborted}")
            return
        approved = approved or await approval.take_queued(ctx)
    del sources  # merged: free the reads before planning and applying (peak memory at 100k)

    t = time.monotonic()
    adopt = ctx.settings.sync.adopt
    ops = make_plan(desired.objects, {} if adopt else ledger)  # adopt: a create for everything
    report.adopt_mode = adopt
    reasserts = await reassert.choose(ctx.sessions, ctx.settings.sync, ops, ledger, reconcile, desired)
    report.reasserts = dict(Counter(op.kind for op in reasserts))
    if dry_run and not ledger:
        report.expected_adoptions = await target.mapping_keyed(ctx.sessions)
    exempt: frozenset[OpKey] = frozenset()
    if approved is not None:
        exempt, report.dropped = approval.exemptions(approved, ops)
        log.warning("plan.approved_ops", plan_id=approved.id, operations=len(exempt), dropped=report.dropped)
    to_apply = await _plan(
        ctx, report, ops, ledger, digest, today, dry_run=dry_run, approved=approved, exempt=exempt,
        reasserts=reasserts,
    )  # fmt: skip
    report.timings["plan"] = time.monotonic() - t
    if not dry_run and to_apply is not None:
        t = time.monotonic()
        assert report.applied_plan_id is not None
        plan_of = {op.seq: approved.id for op in to_apply if op_key(op) in exempt} if approved else None
        report.applied = await ctx.applier().journal_and_drive(
            report.run_id, report.applied_plan_id, to_apply, plan_of=plan_of
        )
        report.timings["apply"] = time.monotonic() - t
        if report.result is RunResult.RUNNING:
            report.result = RunResult.SUCCESS
        await _after_apply(ctx, report, collided, to_apply, ledger)
    report.settle()


async def _pull_and_stage(
    ctx: SyncContext, report: RunReport, collided: Mapping[str, Collided], reads: Reads, *, dry_run: bool
) -> Sources | None:
    """Pull both sources (as far as ``reads`` says) and stage them: what merge works from (None: no
    trusted read to plan from)."""
    t = time.monotonic()
    report.reads = reads.labels
    log.info("pull.started", reads=reads.labels, why=reads.why)
    reused = [key for key in SOURCE_KINDS if reads.mode(key) is ReadMode.REUSE]
    pulled = await pull_all(ctx.infinityhr, ctx.whosoff, ctx.progress, skip=reused, changed=reads.changed)
    report.timings["pull"] = time.monotonic() - t

    t = time.monotonic()
    outcomes = await stage(
        ctx.sessions, pulled, run_id=report.run_id, max_shrink=ctx.settings.sync.max_source_shrink,
        write=not dry_run, window_start=await records.first_good_counts(ctx.sessions, _window_start(ctx)),
    )  # fmt: skip
    report.sources = {  # the shrink guard's counts: whole reads only
        f"{s}:{k}": len(p.records) + len(p.rejects)
        for (s, k), p in pulled.items()
        if outcomes[(s, k)].trusted and not p.changes
    }
    report.timings["stage"] = time.monotonic() - t
    report.stale = [(o.source, o.kind, o.reason or "") for o in outcomes.values() if not o.trusted]
    for source, kind in SOURCE_KINDS:  # a source not read this cycle was trusted when last read
        o = outcomes.get((source, kind))
        metrics.STALE_SOURCES.labels(f"{source}:{kind}").set(0 if o is None or o.trusted else 1)
    untrusted = [key for key, o in outcomes.items() if not o.trusted]
    never = await records.never_trusted(ctx.sessions, untrusted)
    if never:
        report.fail(
            "nothing planned: no trusted read yet of " + ", ".join(never) + "; fix the source and run again "
            f"(`{command('doctor')}` checks each one)",
            result=RunResult.STALE,
        )
        return None
    sources = await _sources(ctx, pulled, outcomes, collided, reused)
    pulled.clear()
    return sources


async def _merge(
    ctx: SyncContext, report: RunReport, sources: Sources, ledger: Ledger, today: dt.date, *, dry_run: bool
) -> Desired:
    """The directory WORKBOX should hold; rejected records written to the quarantine."""
    t = time.monotonic()
    desired = merge(sources, ledger, rules_from(ctx.settings, today))
    report.timings["merge"] = report.timings.get("merge", 0.0) + time.monotonic() - t
    report.rejects = desired.rejects
    report.quarantined = await quarantine.write(
        ctx.sessions, desired.rejects, report.run_id, store=not dry_run
    )
    return desired


async def _recover(ctx: SyncContext, report: RunReport, desired: Desired, ledger: Ledger) -> bool:
    """Re-drive what earlier runs left pending, as far as the current sources still want it: an
    operation a plan made now would not contain is superseded, and so are pending deletes that
    would break the deletion budget (this cycle's plan then contains them, and is held).  Whether
    anything was settled."""

    async def unwanted(jobs: Sequence[Job], approved: frozenset[str]) -> dict[int, str]:
        # only when something is pending: a second plan and the window's counts cost time at 100k
        wanted = {(op.kind, op.key, op.action) for op in make_plan(desired.objects, ledger)}
        limits, window, counts = _limits(ctx), await _window(ctx), _counts(ledger)
        out = {j.op_id: "the current sources no longer want it" for j in jobs
               if (j.kind, j.key, j.action) not in wanted}  # fmt: skip
        # deletes someone approved do not use the budget
        deletes = [
            j for j in jobs if j.op_id not in out and j.action == Action.DELETE and j.plan_id not in approved
        ]
        for kind, n in Counter(j.kind for j in deletes).items():
            reason = budget_reason(Kind(kind), n, counts.get(kind, 0), limits, window)
            if reason:
                out.update({j.op_id: f"held: {reason}" for j in deletes if j.kind == kind})
        return out

    report.recovered = await ctx.applier().recover(unwanted)
    return bool(report.recovered.outcomes)


async def _after_apply(
    ctx: SyncContext,
    report: RunReport,
    collided: Mapping[str, Collided],
    applied: Sequence[Op],
    ledger: Ledger,
) -> None:
    """What an apply taught: collisions recorded or cleared (the quarantine follows them), and what
    the re-assertions found."""
    # (a recovered operation that collided is planned again, and collides again, in this cycle)
    rejects, changed = await collisions.settle(
        ctx.sessions, collided, report.rejects, report.applied, applied, ledger
    )
    if changed:
        report.rejects = rejects
        report.quarantined = await quarantine.write(ctx.sessions, rejects, report.run_id, store=True)
    await reassert.after_apply(ctx.sessions, ctx.settings.sync, report.applied, ledger)


def _counts(ledger: Ledger) -> Counter[str]:
    return Counter(kind for kind, _ in ledger)


def _limits(ctx: SyncContext) -> Limits:
    s = ctx.settings.sync
    return Limits(
        max_deletes=s.max_deletes, max_delete_ratio=s.max_delete_ratio, window=s.delete_window,
        max_clock_jump_days=s.seconds("max_clock_jump") / 86400, max_clock_jump=s.max_clock_jump,
    )  # fmt: skip


def _window_start(ctx: SyncContext) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ctx.settings.sync.seconds("delete_window"))


async def _window(ctx: SyncContext) -> Window:
    applied = await records.applied_since(ctx.sessions, _window_start(ctx))
    return Window(
        deleted=applied.unapproved_deletes, deleted_all=applied.deletes, created_all=applied.creates
    )


async def _sources(
    ctx: SyncContext,
    pulled: Mapping[SourceKind, Pulled],
    outcomes: Mapping[SourceKind, StageOutcome],
    collided: Mapping[str, Collided],
    reused: Sequence[SourceKind],
) -> Sources:
    """What merge works from: a trusted full read is what was just staged; a trusted read of changes
    is laid over the last trusted snapshot (:func:`syncd.engine.reads.overlay`); a stale source, or one
    not read this cycle, plans from its last good snapshot (and keeps that snapshot's read-time rejects
    frozen, less those a read of changes has just replaced)."""
    rejected = [r for key, p in pulled.items() if outcomes[key].trusted for r in p.rejects]
    kept = [key for key, o in outcomes.items() if not o.trusted or pulled[key].changes] + list(reused)
    changed = {
        (key, rid) for key, p in pulled.items() if p.changes and outcomes[key].trusted
        for rid in (*p.records, *(r.record_id for r in p.rejects))
    }  # fmt: skip
    rejected += [
        r for r in await quarantine.stage_rejects(ctx.sessions, kept)
        if ((r.source, r.kind), r.record_id) not in changed
    ]  # fmt: skip

    async def snapshot(source: str, kind: str) -> dict[str, Any]:
        key = (source, kind)
        if key in outcomes and outcomes[key].trusted:
            if not pulled[key].changes:
                return pulled[key].records
            return overlay(await load_snapshot(ctx.sessions, source, kind), pulled[key])
        return await load_snapshot(ctx.sessions, source, kind)

    return Sources(
        employees=await snapshot("infinityhr", "employee"),
        departments=await snapshot("infinityhr", "department"),
        wo_users=await snapshot("whosoff", "user"),
        wo_departments=await snapshot("whosoff", "department"),
        rejected=tuple(rejected),
        collided=collided,
    )


async def _plan(
    ctx: SyncContext,
    report: RunReport,
    ops: list[Op],
    ledger: Ledger,
    digest: str,
    today: dt.date,
    *,
    dry_run: bool,
    approved: Plan | None,
    exempt: frozenset[OpKey],
    reasserts: list[Op],
) -> list[Op] | None:
    """Decide what of ``ops`` may be applied now (:mod:`syncd.engine.hold`) and store the plans: the
    held part (approvable, also from a dry run) and the part applied now.  What to apply (None:
    nothing)."""
    report.ops, report.summary = ops, summarize(ops)
    s = ctx.settings.sync
    hold = decide(
        ops, _counts(ledger), _limits(ctx),
        window=await _window(ctx) if any(op.action == Action.DELETE for op in ops) else None,
        today=today, last_run=await records.last_success_date(ctx.sessions) if ops else None,
        exempt=exempt, hold_whole_plan=s.hold_whole_plan,
    )  # fmt: skip
    to_apply = ops if hold is None else hold.applied
    if not dry_run and (hold is None or not hold.whole):  # re-assertions go with what is applied
        to_apply = [*to_apply, *reasserts]
    if hold is not None:
        report.held, report.held_ops, report.hold_whole = hold.reason, hold.held, hold.whole
        report.held_plan_id = await approval.store_plan(
            ctx.sessions, report.run_id, hold.held, PlanStatus.HELD, hold.reason, digest,
            keep_ops=True, ttl=s.seconds("plan_ttl"),
        )  # fmt: skip
    if to_apply or hold is None:
        status = PlanStatus.PLANNED if dry_run else PlanStatus.APPLIED
        report.applied_plan_id = await approval.store_plan(
            ctx.sessions,
            report.run_id,
            to_apply,
            status,
            None,
            digest,
            keep_ops=dry_run,
            supersede=hold is None,
        )
    report.plan_id = approved.id if approved else (report.held_plan_id or report.applied_plan_id)
    log.info(
        "plan.made", plan_id=report.plan_id, operations=len(ops), summary=report.summary, held=report.held,
        held_plan_id=report.held_plan_id, applied_now=len(to_apply),
    )  # fmt: skip
    if dry_run:
        report.result = RunResult.DRY_RUN
    elif hold is not None:
        report.result = RunResult.HELD
        log.warning(
            "plan.held", plan_id=report.held_plan_id, reason=hold.reason, held=len(hold.held),
            applied_now=len(to_apply), whole_plan=hold.whole,
        )  # fmt: skip
    return to_apply if to_apply or hold is None else None
