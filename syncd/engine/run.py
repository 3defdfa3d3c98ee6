"""One sync cycle: recover → pull → stage → merge → plan → (hold | apply), recorded as a run.

:class:`SyncContext` owns the database engine, the HTTP session and the vendor clients for as long as
the caller keeps it open (one ``--run-once``, or the daemon's lifetime).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import hashlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from syncd import metrics
from syncd.config import Settings
from syncd.db import engine as dbe
from syncd.db.models import LedgerEntry, Plan, QuarantineEntry, SourceState, SyncRun, utcnow
from syncd.engine.apply import Applier, ApplyResult
from syncd.engine.merge import Desired, Reject, Rules, Sources, merge
from syncd.engine.plan import Op, canonical, hold_reason, ledger_digest, make_plan, plan_hash, summarize
from syncd.engine.progress import NULL_PROGRESS, Progress
from syncd.engine.stage import StageOutcome, load_snapshot, pull_all, stage
from syncd.errors import DatabaseError, SyncdError
from syncd.vendors import InfinityHRClient, WhosOffClient, WorkboxClient

log = structlog.get_logger("syncd.engine")

EXIT_OK, EXIT_FAILED, EXIT_HELD = 0, 1, 3
STAGE_LEVEL_CODES = ("unparseable", "duplicate_id")


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class RunReport:
    run_id: int
    result: str
    exit_code: int
    plan_id: str | None = None
    ops: list[Op] = field(default_factory=list)
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    held: str | None = None
    stale: list[tuple[str, str, str]] = field(default_factory=list)
    quarantined: int = 0
    rejects: list[Reject] = field(default_factory=list)
    applied: ApplyResult | None = None
    recovered: ApplyResult | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def message(self) -> str:
        parts = [f"run {self.run_id}: {self.result}"]
        if self.summary:
            parts.append(
                "plan "
                + ", ".join(f"{k} {a} {n}" for k, acts in self.summary.items() for a, n in acts.items())
            )
        else:
            parts.append("no changes")
        if self.applied:
            parts.append(
                f"{self.applied.total_done} applied, {len(self.applied.failed)} failed, "
                f"{self.applied.skipped} skipped, {self.applied.pending} pending"
            )
        if self.quarantined:
            parts.append(f"{self.quarantined} records in quarantine")
        for source, kind, reason in self.stale:
            parts.append(f"STALE {source} {kind}: {reason}")
        if self.held:
            parts.append(
                f"HELD: {self.held}; nothing applied. Review with `syncd plan`, then apply this "
                f"exact plan with `syncd approve {self.plan_id}`"
            )
        if self.error:
            parts.append(self.error)
        return "; ".join(parts)


def rules_from(settings: Settings, today: dt.date | None = None) -> Rules:
    s = settings.sync
    return Rules(
        today=today or dt.datetime.now(dt.UTC).date(), delete_grace=s.delete_grace,
        include_whosoff_only=s.include_whosoff_only, whosoff_only_department=s.whosoff_only_department,
        name_format=s.name_format, phone_precedence=s.phone_precedence,
        grade_order=tuple(s.grade_order), position_order=tuple(s.position_order),
    )  # fmt: skip


class SyncContext:
    """Database, HTTP session and vendor clients for one or many cycles."""

    def __init__(self, settings: Settings, engine: AsyncEngine, http: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = dbe.session_factory(engine)
        self.http = http
        self.infinityhr = InfinityHRClient(http, settings.infinityhr)
        self.whosoff = WhosOffClient(http, settings.whosoff)
        self.workbox = WorkboxClient(http, settings.workbox)
        self.fencing_token: int | None = None
        #: live display of long steps (a terminal's progress bars); log lines carry the same figures
        self.progress: Progress = NULL_PROGRESS

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, *, migrate: bool = True) -> AsyncIterator[SyncContext]:
        async with contextlib.AsyncExitStack() as stack:
            engine = dbe.create_engine(settings.database.url, echo=settings.database.echo)
            stack.push_async_callback(engine.dispose)
            if migrate:
                await dbe.prepare(engine, auto_migrate=settings.database.auto_migrate)
            limit = sum(s.max_concurrency for s in (settings.infinityhr, settings.whosoff, settings.workbox))
            http = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit + 4), raise_for_status=False)
            )
            yield cls(settings, engine, http)

    def applier(self) -> Applier:
        return Applier(
            self.sessions,
            self.workbox,
            concurrency=self.settings.workbox.max_concurrency,
            fencing_token=self.fencing_token,
            progress=self.progress,
        )

    async def ledger_digest(self) -> str:
        """Hash of the ledger as stored (a held plan may be approved only while it is unchanged)."""
        async with self.sessions() as db:
            rows = (
                await db.execute(sa.select(LedgerEntry.kind, LedgerEntry.external_key, LedgerEntry.body_hash))
            ).all()
        return ledger_digest((kind, key, hashed) for kind, key, hashed in rows)

    async def ledger(self) -> dict[tuple[str, str], dict[str, Any]]:
        return (await self.ledger_and_digest())[0]

    async def ledger_and_digest(self) -> tuple[dict[tuple[str, str], dict[str, Any]], str]:
        """The ledger and its :meth:`ledger_digest`, from one read (a plan records the digest of the
        very ledger it was made from)."""
        cols = (LedgerEntry.kind, LedgerEntry.external_key, LedgerEntry.body, LedgerEntry.body_hash)
        async with self.sessions() as db:
            rows = (await db.execute(sa.select(*cols))).all()
        digest = ledger_digest((kind, key, hashed) for kind, key, _, hashed in rows)
        return {(kind, key): body for kind, key, body, _ in rows}, digest


# ------------------------------------------------------------------------------------------ run


async def _start_run(ctx: SyncContext, trigger: str, *, leader: bool = True) -> int:
    async with ctx.sessions.begin() as db:
        if leader:  # we hold the lease: a run still "running" was cut short (killed, database lost)
            await db.execute(
                sa.update(SyncRun)
                .where(SyncRun.result == "running")
                .values(result="interrupted", finished_at=utcnow(), error="the process ended before the run")
            )
        run = SyncRun(trigger=trigger, started_at=utcnow(), result="running", holder=holder_id())
        db.add(run)
        await db.flush()
        return run.id


async def _finish_run(ctx: SyncContext, report: RunReport, started: float) -> None:
    counts: dict[str, Any] = {
        "plan": report.summary,
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }
    if report.applied:
        counts["apply"] = report.applied.counts()
    if report.recovered and (report.recovered.total_done or report.recovered.failed):
        counts["recovered"] = report.recovered.counts()
    async with ctx.sessions.begin() as db:
        await db.execute(
            sa.update(SyncRun)
            .where(SyncRun.id == report.run_id)
            .values(
                finished_at=utcnow(),
                result=report.result,
                counts=counts,
                plan_id=report.plan_id,
                stale_sources=[f"{s}:{k}" for s, k, _ in report.stale],
                quarantine_size=report.quarantined,
                error=report.error,
            )
        )
    metrics.RUNS.labels(report.result).inc()
    if report.result in ("success", "dry-run"):
        metrics.LAST_SUCCESS.set(time.time())
    report.timings["total"] = time.monotonic() - started
    log.info(
        "run.finished",
        run_id=report.run_id,
        result=report.result,
        exit_code=report.exit_code,
        seconds=round(report.timings["total"], 3),
        summary=report.summary,
        quarantined=report.quarantined,
        stale=[f"{s}:{k}" for s, k, _ in report.stale],
    )


#: cyclic-GC thresholds while a cycle runs (see :func:`relaxed_gc`)
CYCLE_GC_THRESHOLD = (100_000, 50, 50)


@contextlib.contextmanager
def relaxed_gc() -> Iterator[None]:
    """Fewer cyclic-GC passes while a cycle builds its data.

    A cycle allocates hundreds of thousands of long-lived dicts and strings (staged payloads, desired
    bodies, the ledger) and almost no reference cycles; with the default gen-0 threshold of 700 the
    collector runs over all of them again and again (13 full collections in a no-op at 100k, measured;
    2 with this setting, merge 15–25 % faster).  Reference counting still frees everything as it
    goes; the thresholds are restored when the cycle ends.
    """
    previous = gc.get_threshold()
    gc.set_threshold(*CYCLE_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


async def run_cycle(
    ctx: SyncContext, *, trigger: str = "once", dry_run: bool = False, today: dt.date | None = None
) -> RunReport:
    """One full cycle.  Never raises for a vendor or input problem: the report says what happened."""
    started = time.monotonic()
    with dbe.translate_errors(ctx.engine):
        run_id = await _start_run(ctx, trigger, leader=not dry_run)
    report = RunReport(run_id=run_id, result="running", exit_code=EXIT_OK)
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        log.info("run.started", trigger=trigger, dry_run=dry_run)
        try:
            with dbe.translate_errors(ctx.engine), relaxed_gc():
                await _cycle(ctx, report, dry_run=dry_run, today=today)
        except SyncdError as exc:
            report.result, report.exit_code, report.error = (
                "failed",
                max(EXIT_FAILED, exc.exit_code),
                str(exc),
            )
            log.error("run.failed", error=str(exc))
        try:
            with dbe.translate_errors(ctx.engine):
                await _finish_run(ctx, report, started)
        except DatabaseError as exc:  # the journal is intact; only this run's summary row is not
            log.error("run.unrecorded", error=str(exc))
    return report


async def _cycle(ctx: SyncContext, report: RunReport, *, dry_run: bool, today: dt.date | None) -> None:
    t = time.monotonic()
    if not dry_run:
        report.recovered = await ctx.applier().recover()
        if report.recovered.aborted:
            report.result, report.exit_code = "failed", EXIT_FAILED
            report.error = f"WORKBOX refused our configuration: {report.recovered.aborted}"
            return
        await apply_queued_approvals(ctx)
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
    ledger_read: asyncio.Task[tuple[dict[tuple[str, str], dict[str, Any]], str]],
    *,
    dry_run: bool,
    today: dt.date | None,
) -> None:
    settings = ctx.settings
    t = time.monotonic()
    pulled = await pull_all(ctx.infinityhr, ctx.whosoff, ctx.progress)
    report.timings["pull"] = time.monotonic() - t

    t = time.monotonic()
    outcomes = await stage(
        ctx.sessions,
        pulled,
        run_id=report.run_id,
        max_shrink=settings.sync.max_source_shrink,
        write=not dry_run,
    )
    report.timings["stage"] = time.monotonic() - t
    report.stale = [(o.source, o.kind, o.reason or "") for o in outcomes.values() if not o.trusted]
    for (source, kind), o in outcomes.items():
        metrics.STALE_SOURCES.labels(f"{source}:{kind}").set(0 if o.trusted else 1)
    never = await _never_trusted(ctx, outcomes)
    if never:
        report.result, report.exit_code = "stale", EXIT_FAILED
        report.error = (
            "nothing planned: no trusted read yet of " + ", ".join(never) + "; fix the source and run again"
        )
        return

    t = time.monotonic()
    rejected = [r for key, p in pulled.items() if outcomes[key].trusted for r in p.rejects]
    rejected += await _stage_rejects_of_stale(ctx, outcomes)

    async def snapshot(source: str, kind: str) -> dict[str, Any]:
        # a trusted read is what was just staged; a stale source plans from its last good snapshot
        if outcomes[(source, kind)].trusted:
            return pulled[(source, kind)].records
        return await load_snapshot(ctx.sessions, source, kind)

    sources = Sources(
        employees=await snapshot("infinityhr", "employee"),
        departments=await snapshot("infinityhr", "department"),
        wo_users=await snapshot("whosoff", "user"),
        wo_departments=await snapshot("whosoff", "department"),
        rejected=tuple(rejected),
    )
    ledger, digest = await ledger_read
    desired = merge(sources, ledger, rules_from(settings, today))
    del sources
    pulled.clear()  # merged: free the raw reads before planning and applying (peak memory at 100k)
    report.timings["merge"] = time.monotonic() - t
    report.rejects = desired.rejects
    report.quarantined = await _write_quarantine(ctx, desired, report.run_id, write=not dry_run)

    t = time.monotonic()
    ops = make_plan(desired.objects, ledger)
    report.ops, report.summary = ops, summarize(ops)
    members = sum(1 for kind, _ in ledger if kind == "user")
    report.held = hold_reason(
        ops, members, max_deletes=settings.sync.max_deletes, max_delete_ratio=settings.sync.max_delete_ratio
    )
    status = "planned" if dry_run else ("held" if report.held else "applied")
    report.plan_id = await _store_plan(
        ctx, report.run_id, ops, status, report.held, digest, keep_ops=dry_run or bool(report.held)
    )
    report.timings["plan"] = time.monotonic() - t
    log.info(
        "plan.made", plan_id=report.plan_id, operations=len(ops), summary=report.summary, held=report.held
    )

    if dry_run:
        report.result = "dry-run"
    elif report.held:
        report.result, report.exit_code = "held", EXIT_HELD
        log.warning("plan.held", plan_id=report.plan_id, reason=report.held)
    else:
        t = time.monotonic()
        applier = ctx.applier()
        report.applied = await applier.journal_and_drive(report.run_id, report.plan_id, ops)
        report.timings["apply"] = time.monotonic() - t
        report.result = "success"
    _settle_result(report)


def _settle_result(report: RunReport) -> None:
    failed = report.applied and (report.applied.failed or report.applied.pending or report.applied.aborted)
    recovered_failed = report.recovered and report.recovered.failed
    if report.result == "held":
        return
    if report.stale:
        report.result, report.exit_code = "stale", EXIT_FAILED
        report.error = "stale source(s): " + "; ".join(f"{s} {k}: {r}" for s, k, r in report.stale)
    elif failed or recovered_failed:
        report.result, report.exit_code = "failed", EXIT_FAILED
        if report.applied and report.applied.aborted:
            report.error = f"stopped pushing: {report.applied.aborted}"


async def _never_trusted(ctx: SyncContext, outcomes: dict[tuple[str, str], StageOutcome]) -> list[str]:
    out = []
    async with ctx.sessions() as db:
        for (source, kind), o in sorted(outcomes.items()):
            state = await db.get(SourceState, (source, kind))
            if not o.trusted and (state is None or state.last_good_run_id is None):
                out.append(f"{source} {kind}")
    return out


async def _stage_rejects_of_stale(
    ctx: SyncContext, outcomes: dict[tuple[str, str], StageOutcome]
) -> list[Reject]:
    stale = [(o.source, o.kind) for o in outcomes.values() if not o.trusted]
    if not stale:
        return []
    async with ctx.sessions() as db:
        rows = (
            (
                await db.execute(
                    sa.select(QuarantineEntry).where(QuarantineEntry.reason_code.in_(STAGE_LEVEL_CODES))
                )
            )
            .scalars()
            .all()
        )
    return [
        Reject(r.source, r.kind, r.record_id, r.reason_code, r.reason, r.payload)
        for r in rows
        if (r.source, r.kind) in stale
    ]


async def _write_quarantine(ctx: SyncContext, desired: Desired, run_id: int, *, write: bool = True) -> int:
    """Replace the quarantine with this run's rejects; a record leaves it once its source fixes it."""
    now = utcnow()
    wanted: dict[tuple[str, str, str], Reject] = {}
    for r in desired.rejects:
        key = r.record_id or "h-" + hashlib.sha256(canonical(dict(r.payload)).encode()).hexdigest()[:40]
        wanted.setdefault((r.source, r.kind, key[:64]), r)
    if not write:  # a dry run counts; the quarantine table belongs to the leader
        return len(wanted)
    async with ctx.sessions.begin() as db:
        existing = {
            (q.source, q.kind, q.record_key): q
            for q in (await db.execute(sa.select(QuarantineEntry))).scalars()
        }
        for ident, q in existing.items():
            if ident not in wanted:
                await db.delete(q)
                log.info("quarantine.released", source=q.source, kind=q.kind, record_id=q.record_id)
        for ident, r in wanted.items():
            row = existing.get(ident)
            if row is None:
                db.add(
                    QuarantineEntry(
                        source=r.source,
                        kind=r.kind,
                        record_key=ident[2],
                        record_id=r.record_id,
                        reason_code=r.reason_code,
                        reason=r.reason,
                        payload=dict(r.payload),
                        first_seen=now,
                        last_seen=now,
                        last_run_id=run_id,
                    )
                )
                log.warning(
                    "quarantine.added",
                    source=r.source,
                    kind=r.kind,
                    record_id=r.record_id,
                    reason_code=r.reason_code,
                    reason=r.reason,
                )
            else:
                row.reason_code, row.reason, row.payload = r.reason_code, r.reason, dict(r.payload)
                row.last_seen, row.last_run_id = now, run_id
    for source in ("infinityhr", "whosoff"):
        metrics.QUARANTINE_SIZE.labels(source).set(sum(1 for s, _, _ in wanted if s == source))
    return len(wanted)


async def _store_plan(
    ctx: SyncContext,
    run_id: int,
    ops: list[Op],
    status: str,
    reason: str | None,
    ledger_hash: str,
    *,
    keep_ops: bool,
) -> str:
    plan = Plan(
        id=str(uuid.uuid4()),
        run_id=run_id,
        created_at=utcnow(),
        plan_hash=plan_hash(ops),
        ledger_hash=ledger_hash,  # of the ledger the plan was made from (approval compares it)
        status=status,
        hold_reason=reason,
        summary=summarize(ops),
        operations=[{**op.as_dict(), "before": op.before} for op in ops] if keep_ops else [],
    )
    async with ctx.sessions.begin() as db:
        db.add(plan)
    if status == "held":
        async with ctx.sessions() as db:
            held = await db.scalar(sa.select(sa.func.count()).select_from(Plan).where(Plan.status == "held"))
        metrics.HELD_PLANS.set(held or 0)
    return plan.id


# -------------------------------------------------------------------------------------- approve


class ApprovalRefused(SyncdError):
    """The held plan cannot be applied as it is."""


#: plan states an approval may apply: held by a safety rule, or approval queued for the leader
APPROVABLE = ("held", "queued")


async def request_approval(ctx: SyncContext, plan_id: str) -> None:
    """Queue the approval of a held plan for whichever process holds the leader lease: it applies the
    plan (with the same ledger check) at the start of its next cycle."""
    async with ctx.sessions.begin() as db:
        plan = await db.get(Plan, plan_id)
        if plan is None:
            raise ApprovalRefused(f"no plan {plan_id!r}: list held plans with `syncd runs`")
        if plan.status not in APPROVABLE:
            raise ApprovalRefused(f"plan {plan_id} is {plan.status}, not held: nothing to approve")
        plan.status = "queued"
    log.warning("plan.approval_requested", plan_id=plan_id)


async def apply_queued_approvals(ctx: SyncContext) -> list[RunReport]:
    """Apply approvals queued while another process held the lease (oldest first)."""
    async with ctx.sessions() as db:
        ids = (
            (await db.execute(sa.select(Plan.id).where(Plan.status == "queued").order_by(Plan.created_at)))
            .scalars()
            .all()
        )
    reports = []
    for plan_id in ids:
        try:
            reports.append(await approve(ctx, plan_id))
        except ApprovalRefused as exc:
            log.error("plan.approval_refused", plan_id=plan_id, error=str(exc))
    return reports


async def approve(ctx: SyncContext, plan_id: str) -> RunReport:
    """Apply exactly the held plan ``plan_id`` if the ledger has not changed since it was made."""
    started = time.monotonic()
    async with ctx.sessions() as db:
        plan = await db.get(Plan, plan_id)
    if plan is None:
        raise ApprovalRefused(f"no plan {plan_id!r}: list held plans with `syncd runs`")
    if plan.status not in APPROVABLE:
        raise ApprovalRefused(f"plan {plan_id} is {plan.status}, not held: nothing to approve")
    run_id = await _start_run(ctx, "approve", leader=False)  # may run inside a cycle: no sweep
    report = RunReport(run_id=run_id, result="running", exit_code=EXIT_OK, plan_id=plan_id)
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        try:
            applier = ctx.applier()
            report.recovered = await applier.recover()
            current = await ctx.ledger_digest()
            if current != plan.ledger_hash:
                async with ctx.sessions.begin() as db:
                    await db.execute(sa.update(Plan).where(Plan.id == plan_id).values(status="refused"))
                raise ApprovalRefused(
                    f"plan {plan_id} was made from a ledger that has changed since (other changes were "
                    "applied): run `syncd plan` again and approve the new plan"
                )
            ops = [
                Op(
                    kind=o["kind"],
                    key=o["key"],
                    action=o["action"],
                    body=o["body"],
                    before=o.get("before"),
                    depends_on=list(o["depends_on"]),
                    seq=o["seq"],
                    level=o["level"],
                )
                for o in plan.operations
            ]
            report.ops, report.summary = ops, summarize(ops)
            jobs = await applier.journal(run_id, plan_id, ops)
            async with ctx.sessions.begin() as db:
                await db.execute(sa.update(Plan).where(Plan.id == plan_id).values(status="approved"))
            log.warning("plan.approved", plan_id=plan_id, operations=len(ops), summary=report.summary)
            report.applied = await applier.drive(jobs)
            report.result = "success"
            _settle_result(report)
        except ApprovalRefused as exc:
            report.result, report.exit_code, report.error = "failed", EXIT_FAILED, str(exc)
            await _finish_run(ctx, report, started)
            raise
        await _finish_run(ctx, report, started)
    return report
