"""Operations → WORKBOX, journaled.

Every operation is written to the journal (``operations``, state ``pending``) before it is sent,
and settled after (``done`` / ``failed`` / ``skipped``, ``sent_at`` = when its first answer was
recorded): the ledger changes in the same transaction that settles the operation, so the ledger never
claims something WORKBOX was not told.  An unsettled operation may or may not have reached WORKBOX;
recovery re-drives it either way.  (``in_flight``, which journals written by earlier versions may
hold, is treated like ``pending``: there is no separate "about to send" write any more, it cost a
row update per operation and told nothing recovery could use.)

Replays are idempotent, which is what makes a crash harmless: a create answered "already exists" is
followed by an update with the journaled body; an update answered "not found" becomes a create; a
delete answered "not found" counts as done.  A rejected operation fails alone with its vendor code
and the operations that depend on it are skipped; a transient failure that outlived its retries is
left ``pending`` for the next run, which re-drives unsettled operations before it plans.  A
configuration-fatal answer (E901, E903, gateway 401) stops the apply.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd import metrics
from syncd.db.models import Lease, LedgerEntry, Operation, utcnow
from syncd.engine.plan import Op, body_hash
from syncd.engine.progress import NULL_PROGRESS, Progress
from syncd.errors import (
    AlreadyExistsError,
    NotFoundError,
    RejectedError,
    SyncdError,
    VendorConfigError,
)
from syncd.vendors import Kind, WorkboxClient

log = structlog.get_logger("syncd.engine.apply")

#: outcomes are settled in batches: at most this many, or this often (seconds).  A crash loses at
#: most one batch of settles; those operations stay in flight and are re-driven idempotently.
MAX_BATCH = 500
FLUSH_SECONDS = 0.2
#: operations per journal transaction for the levels journaled while others are applied
JOURNAL_CHUNK = 250


@dataclass
class Job:
    op_id: int
    run_id: int
    seq: int
    level: int
    kind: str
    key: str
    action: str
    body: dict[str, Any] | None
    depends_on: list[int]
    #: ``body_hash(body)`` as journaled (None: compute it when needed)
    body_hash: str | None = None


@dataclass
class Failure:
    seq: int
    kind: str
    key: str
    action: str
    code: str | None
    message: str


@dataclass
class ApplyResult:
    done: Counter[tuple[str, str]] = field(default_factory=Counter)
    failed: list[Failure] = field(default_factory=list)
    skipped: int = 0
    pending: int = 0
    aborted: str | None = None
    #: (kind, action, result) → count, result in done/failed/skipped/pending
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    @property
    def total_done(self) -> int:
        return sum(self.done.values())

    def merge(self, other: ApplyResult) -> None:
        self.done.update(other.done)
        self.failed.extend(other.failed)
        self.skipped += other.skipped
        self.pending += other.pending
        self.aborted = self.aborted or other.aborted
        self.outcomes.update(other.outcomes)

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{kind: {action: {result: n}}}`` for the run record."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (kind, action, result), n in sorted(self.outcomes.items()):
            out.setdefault(kind, {}).setdefault(action, {})[result] = n
        return out


class FencedOut(SyncdError):
    """Another process took the leader lease: this one must not journal, send or settle anything."""

    def __init__(self, token: int) -> None:
        super().__init__(
            f"lost the leader lease (fencing token {token} is no longer current): stopped applying; "
            "the new leader re-drives what this run left unsettled"
        )


class Applier:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        workbox: WorkboxClient,
        *,
        concurrency: int,
        fencing_token: int | None = None,
        progress: Progress = NULL_PROGRESS,
    ) -> None:
        self.sessions = sessions
        self.workbox = workbox
        self.concurrency = concurrency
        self.fencing_token = fencing_token
        self.progress: Progress = progress
        self._write = asyncio.Lock()
        self._batch: list[_Outcome] = []
        self._flushed = time.monotonic()
        self._flushing: asyncio.Task[None] | None = None
        self._flush_error: BaseException | None = None

    # ---------------------------------------------------------------------------------- journal

    async def journal(self, run_id: int, plan_id: str, ops: Sequence[Op]) -> list[Job]:
        """Write ``ops`` as ``pending`` in one transaction (before any of them is sent); their jobs."""
        now = utcnow()
        hashes = [body_hash(op.body) if op.body is not None else None for op in ops]
        rows = [
            {"run_id": run_id, "plan_id": plan_id, "seq": op.seq, "level": op.level, "kind": op.kind,
             "external_key": op.key, "action": op.action, "body": op.body,
             "body_hash": hashed, "depends_on": op.depends_on,
             "state": "pending", "attempts": 0, "fencing_token": self.fencing_token,
             "created_at": now, "updated_at": now}
            for op, hashed in zip(ops, hashes, strict=True)
        ]  # fmt: skip
        table = cast(sa.Table, Operation.__table__)
        seqs = [op.seq for op in ops] or [0]
        async with self.sessions.begin() as db:
            await self._check_fence(db)  # even with nothing to write: a fenced-out leader learns it here
            for i in range(0, len(rows), 2000):
                await db.execute(sa.insert(table), rows[i : i + 2000])
            # ids by seq (not RETURNING: in parameter order, SQLite would insert row by row)
            found = await db.execute(
                sa.select(table.c.seq, table.c.id).where(
                    table.c.run_id == run_id,
                    table.c.plan_id == plan_id,
                    table.c.seq.between(min(seqs), max(seqs)),
                )
            )
            id_of = {seq: op_id for seq, op_id in found.all()}
        ids = [id_of[op.seq] for op in ops]
        # the jobs come from the operations in hand (not read back): one copy of each body in memory
        return [
            Job(
                op_id,
                run_id,
                op.seq,
                op.level,
                op.kind,
                op.key,
                op.action,
                op.body,
                list(op.depends_on),
                digest,
            )
            for op_id, op, digest in zip(ids, ops, hashes, strict=True)
        ]

    async def _jobs(self, where: sa.ColumnElement[bool]) -> list[Job]:
        cols = (
            Operation.id,
            Operation.run_id,
            Operation.seq,
            Operation.level,
            Operation.kind,
            Operation.external_key,
            Operation.action,
            Operation.body,
            Operation.depends_on,
        )
        async with self.sessions() as db:
            rows = (
                await db.execute(sa.select(*cols).where(where).order_by(Operation.run_id, Operation.seq))
            ).all()
        return [Job(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], list(r[8] or [])) for r in rows]

    async def unsettled(self) -> list[Job]:
        return await self._jobs(Operation.state.in_(("pending", "in_flight")))

    # ----------------------------------------------------------------------------------- drive

    async def recover(self) -> ApplyResult:
        """Re-drive operations an earlier run left unsettled (crash, transient failure), run by run."""
        jobs = await self.unsettled()
        result = ApplyResult()
        if not jobs:
            return result
        log.warning("apply.recovering", operations=len(jobs), runs=len({j.run_id for j in jobs}))
        for run_id in sorted({j.run_id for j in jobs}):
            of_run = [j for j in jobs if j.run_id == run_id]
            result.merge(await self.drive(of_run, settled=await self._settled_dependencies(run_id, of_run)))
            if result.aborted:
                break
        return result

    async def _settled_dependencies(self, run_id: int, jobs: Sequence[Job]) -> dict[int, tuple[str, str]]:
        """How the dependencies of ``jobs`` that are not re-driven with them ended: a dependant of a
        failed or skipped operation is skipped on recovery too, as it would have been in its run."""
        missing = {d for j in jobs for d in j.depends_on} - {j.seq for j in jobs}
        if not missing:
            return {}
        out: dict[int, tuple[str, str]] = {}
        ids = sorted(missing)
        async with self.sessions() as db:
            for i in range(0, len(ids), 1000):
                rows = await db.execute(
                    sa.select(Operation.seq, Operation.state, Operation.last_error).where(
                        Operation.run_id == run_id, Operation.seq.in_(ids[i : i + 1000])
                    )
                )
                for seq, state, error in rows.all():
                    said = {"done": "done", "failed": "failed", "skipped": "was skipped"}.get(state)
                    out[seq] = (said or f"is {state}", error or "")
        return out

    async def journal_and_drive(self, run_id: int, plan_id: str, ops: Sequence[Op]) -> ApplyResult:
        """Journal a plan level by level, and apply it.

        The first level is journaled (one transaction) before anything is sent; every later level is
        journaled in the background, in short transactions, while the levels before it are applied,
        and no operation of a level is sent before the whole level is journaled.  So no operation is
        ever sent unjournaled, and the pushes do not wait for a journal of the whole plan (~2.5 s at
        100k operations).  A crash
        meanwhile leaves a journal that ends at a level boundary or inside the level being written:
        recovery re-drives what is journaled (its dependencies are in lower levels, so journaled too)
        and the next plan covers the rest.
        """
        by_level: dict[int, list[Op]] = collections.defaultdict(list)
        for op in ops:
            by_level[op.level].append(op)
        levels = sorted(by_level)
        if not levels:
            await self.journal(run_id, plan_id, [])  # nothing to write, but a fenced-out leader learns it
            return await self.drive([])
        loop = asyncio.get_running_loop()
        journaled: dict[int, asyncio.Future[list[Job]]] = {level: loop.create_future() for level in levels}
        journaled[levels[0]].set_result(await self.journal(run_id, plan_id, by_level[levels[0]]))

        async def journal_later_levels() -> None:
            for level in levels[1:]:
                jobs: list[Job] = []
                try:
                    level_ops = by_level[level]
                    for i in range(0, len(level_ops), JOURNAL_CHUNK):
                        async with self._write:  # one writer at a time (SQLite): settles wait their turn
                            jobs += await self.journal(run_id, plan_id, level_ops[i : i + JOURNAL_CHUNK])
                except Exception as exc:
                    # sends stop (as after a failed settle: the database is not keeping up or we are
                    # fenced out); the level waiting for this one, and every later one, raises it
                    self._flush_error = self._flush_error or exc
                    for future in journaled.values():
                        if not future.done():
                            future.set_exception(exc)
                    raise
                journaled[level].set_result(jobs)

        writer = asyncio.create_task(journal_later_levels(), name="journal the later levels")

        async def jobs_of(level: int) -> list[Job]:
            return await journaled[level]

        try:
            return await self._drive(levels, jobs_of, len(ops))
        finally:
            if not writer.done():
                writer.cancel()
            await asyncio.wait([writer])
            for future in journaled.values():  # an error seen by nobody is still retrieved
                if future.done() and not future.cancelled():
                    future.exception()
                else:
                    future.cancel()
            if not writer.cancelled():
                writer.exception()

    async def drive(
        self, jobs: Sequence[Job], *, settled: Mapping[int, tuple[str, str]] | None = None
    ) -> ApplyResult:
        """Apply ``jobs`` (one run's operations, journaled): each as soon as its dependencies are done.

        ``settled``: seq → (outcome, error) of dependencies settled earlier and not among ``jobs``.
        """
        by_level: dict[int, list[Job]] = collections.defaultdict(list)
        for job in jobs:
            by_level[job.level].append(job)

        async def jobs_of(level: int) -> list[Job]:
            return by_level[level]

        return await self._drive(sorted(by_level), jobs_of, len(jobs), settled or {})

    async def _drive(
        self,
        levels: list[int],
        jobs_of: Callable[[int], Awaitable[list[Job]]],
        total: int,
        settled: Mapping[int, tuple[str, str]] | None = None,
    ) -> ApplyResult:
        """Send the jobs of ``levels`` with a pool of ``concurrency`` workers.

        A job is sent as soon as every dependency it has in this drive has settled ``done`` (not when
        its whole level has: no idle workers at level boundaries); a job with a dependency that did
        not end ``done`` is skipped, and so are its own dependants.  Dependencies always sit in lower
        levels, and levels are taken in order, so a dependency is known before its dependants.  After
        a configuration-fatal answer nothing more is sent: the rest is counted pending.
        """
        result = ApplyResult()
        counters: dict[tuple[str, str, str], Any] = {}
        state: dict[int, str] = {seq: outcome for seq, (outcome, _) in (settled or {}).items()}
        why: dict[int, str] = {seq: error for seq, (_, error) in (settled or {}).items()}
        started = time.monotonic()
        registered: set[int] = set()
        waiting: dict[int, int] = {}  # seq -> dependencies not settled yet
        dependants: dict[int, list[Job]] = collections.defaultdict(list)
        level_left: Counter[int] = Counter()
        ready: collections.deque[Job] = collections.deque()
        wake = asyncio.Event()
        loaded = False

        def release(job: Job) -> None:
            """Every dependency of ``job`` has settled: queue it, or skip it."""
            blocked = next((d for d in job.depends_on if state.get(d, "done") != "done"), None)
            if blocked is None or result.aborted:  # after an abort, run() counts it pending
                ready.append(job)
                wake.set()
                return
            reason = f"depends on operation #{blocked}, which {state[blocked]}: {why.get(blocked, '')}"
            self._settle(job, "skipped", error=reason.strip(": "))
            state[job.seq], why[job.seq] = "was skipped", why.get(blocked, "")
            result.skipped += 1
            result.outcomes[(job.kind, job.action, "skipped")] += 1
            finished(job)

        def finished(job: Job) -> None:
            for dependant in dependants.pop(job.seq, ()):
                waiting[dependant.seq] -= 1
                if waiting[dependant.seq] == 0:
                    del waiting[dependant.seq]
                    release(dependant)
            level_left[job.level] -= 1
            if level_left[job.level] == 0:
                log.info(
                    "apply.progress",
                    level=job.level,
                    done=result.total_done,
                    failed=len(result.failed),
                    skipped=result.skipped,
                    pending=result.pending,
                    total=total,
                    seconds=round(time.monotonic() - started, 2),
                )
            if loaded and not level_left.total():
                wake.set()  # everything settled: idle workers may leave

        def register(jobs: list[Job]) -> None:
            for job in jobs:  # every job first: a level's jobs never depend on each other
                registered.add(job.seq)
                level_left[job.level] += 1
            for job in jobs:
                deps = [d for d in job.depends_on if d in registered and d not in state]
                if deps:
                    waiting[job.seq] = len(deps)
                    for dep in deps:
                        dependants[dep].append(job)
                else:
                    release(job)

        async def run(job: Job) -> None:
            if result.aborted:
                result.pending += 1
                result.outcomes[(job.kind, job.action, "pending")] += 1
                state[job.seq] = "was not sent"
                return
            self._raise_flush_error()  # fenced out or database lost: send nothing more
            outcome, code, message = await self._execute(job)
            state[job.seq] = {"done": "done", "failed": "failed"}.get(outcome, "is pending")
            why[job.seq] = f"{code or ''} {message}".strip()
            if outcome == "abort":
                result.aborted = message
                result.pending += 1
            elif outcome == "done":
                result.done[(job.kind, job.action)] += 1
            elif outcome == "failed":
                result.failed.append(Failure(job.seq, job.kind, job.key, job.action, code, message))
            else:
                result.pending += 1
            recorded = "pending" if outcome == "abort" else outcome
            result.outcomes[(job.kind, job.action, recorded)] += 1
            counter = counters.get((job.kind, job.action, recorded))
            if counter is None:  # labels() locks and validates: once per kind, action and outcome
                counter = counters[(job.kind, job.action, recorded)] = metrics.OPERATIONS.labels(
                    job.kind, job.action, recorded
                )
            counter.inc()
            done = sum(result.outcomes.values())
            if done % 25 == 0 or done == total:
                self.progress.update("apply to WORKBOX", done=done, total=total)

        async def load() -> None:
            nonlocal loaded
            try:
                for level in levels:
                    register(await jobs_of(level))
            finally:
                loaded = True
                wake.set()

        # a pool of `concurrency` workers, not one task per operation (96k tasks at 100k employees)
        async def worker() -> None:
            while True:
                if ready:
                    job = ready.popleft()
                    await run(job)
                    finished(job)
                elif loaded and not level_left.total():
                    return
                else:
                    wake.clear()
                    await wake.wait()

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(load())
                for _ in range(self.concurrency):
                    group.create_task(worker())
        except BaseExceptionGroup as failed:  # the first error, as itself (a SyncdError mostly)
            with contextlib.suppress(Exception):  # settle what was done (unless that is what failed)
                await self._flush_all()
            raise failed.exceptions[0] from None
        await self._flush_all()
        self.progress.close("apply to WORKBOX")
        return result

    async def _execute(self, job: Job) -> tuple[str, str | None, str]:
        kind = cast(Kind, job.kind)
        body = job.body or {}
        try:
            try:
                if job.action == "create":
                    await self.workbox.create(kind, job.key, body)
                elif job.action == "update":
                    await self.workbox.update(kind, job.key, body)
                else:
                    await self.workbox.delete(kind, job.key)
            except AlreadyExistsError:
                log.info("apply.replay", kind=job.kind, key=job.key, action="create→update")
                await self.workbox.update(kind, job.key, body)
            except NotFoundError:
                if job.action == "update":
                    log.warning("apply.replay", kind=job.kind, key=job.key, action="update→create")
                    await self.workbox.create(kind, job.key, body)
                # a delete of an unknown key already happened
        except VendorConfigError as exc:
            self._settle(job, "pending", error=str(exc), code=exc.code)
            log.error("apply.stopped", kind=job.kind, key=job.key, code=exc.code, error=str(exc))
            return "abort", exc.code, str(exc)
        except RejectedError as exc:
            self._settle(job, "failed", error=str(exc), code=exc.code)
            log.warning(
                "apply.rejected", kind=job.kind, key=job.key, action=job.action, code=exc.code, error=str(exc)
            )
            return "failed", exc.code, str(exc)
        except SyncdError as exc:  # transient after retries, protocol trouble: try again next run
            self._settle(job, "pending", error=str(exc), code=getattr(exc, "code", None))
            log.warning("apply.pending", kind=job.kind, key=job.key, action=job.action, error=str(exc))
            return "pending", getattr(exc, "code", None), str(exc)
        self._settle(job, "done")
        return "done", None, ""

    # ----------------------------------------------------------------------------------- settle

    async def _check_fence(self, db: AsyncSession) -> None:
        """Refuse to journal, send or settle once another process has taken the leader lease.

        The lease row is read ``FOR SHARE`` (PostgreSQL), so a successor cannot take over while this
        transaction commits.  Without a fencing token (no lease in use) there is nothing to check.
        """
        if self.fencing_token is None:
            return
        current = await db.scalar(
            sa.select(Lease.token).where(Lease.token == self.fencing_token).with_for_update(read=True)
        )
        if current is None:
            raise FencedOut(self.fencing_token)

    def _settle(self, job: Job, outcome: str, *, error: str | None = None, code: str | None = None) -> None:
        """Record an outcome; it reaches the database with the next batch (see :meth:`_flush`)."""
        self._batch.append(_Outcome(job, outcome, error, code, utcnow()))
        if len(self._batch) >= MAX_BATCH or time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self._flush_soon()

    def _flush_soon(self) -> None:
        self._reap()
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
            self._flushing.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        """Always collect a background flush's error (asyncio would otherwise log it as never
        retrieved, with a traceback, when the run ends on another error first)."""
        if not task.cancelled() and task.exception() is not None:
            self._flush_error = self._flush_error or task.exception()

    def _reap(self) -> None:
        """Keep the error of a finished background flush: the next send or the final flush raises it."""
        task = self._flushing
        if task is not None and task.done():
            self._flushing = None
            if not task.cancelled() and task.exception() is not None:
                self._flush_error = self._flush_error or task.exception()

    def _raise_flush_error(self) -> None:
        self._reap()
        if self._flush_error is not None:
            raise self._flush_error

    async def _flush(self) -> None:
        """Settle the outcomes gathered so far in ONE transaction: journal states, then the ledger.

        Dependants need only the in-memory outcome, so nobody waits for this.  An outcome not yet
        flushed when the process dies leaves its operation unsettled; the next start re-drives it
        idempotently, so batching costs nothing in safety and saves a transaction per operation.
        """
        async with self._write:
            batch, self._batch = self._batch, []
            self._flushed = time.monotonic()
            if batch:
                async with self.sessions.begin() as db:
                    await self._check_fence(db)
                    await _write_outcomes(db, batch)

    async def _flush_all(self) -> None:
        if self._flushing is not None:
            await asyncio.wait([self._flushing])
        self._raise_flush_error()
        while self._batch:
            await self._flush()


@dataclass
class _Outcome:
    job: Job
    state: str
    error: str | None
    code: str | None
    at: dt.datetime


async def _write_outcomes(db: AsyncSession, batch: list[_Outcome]) -> None:
    ops = cast(sa.Table, Operation.__table__)
    await db.execute(
        sa.update(ops)
        .where(ops.c.id == sa.bindparam("b_id"))
        .values(
            state=sa.bindparam("b_state"),
            last_error=sa.bindparam("b_error"),
            error_code=sa.bindparam("b_code"),
            attempts=ops.c.attempts + sa.bindparam("b_inc"),
            updated_at=sa.bindparam("b_at"),
            settled_at=sa.bindparam("b_settled"),
            sent_at=sa.func.coalesce(ops.c.sent_at, sa.bindparam("b_sent")),
        ),
        [
            {
                "b_id": o.job.op_id,
                "b_state": o.state,
                "b_error": o.error,
                "b_code": o.code,
                "b_inc": 0 if o.state == "skipped" else 1,
                "b_at": o.at,
                "b_settled": o.at if o.state in ("done", "failed", "skipped") else None,
                "b_sent": None if o.state == "skipped" else o.at,
            }
            for o in batch
        ],
    )
    latest: dict[tuple[str, str], _Outcome] = {}
    for o in batch:  # the last outcome per object wins (a rotation's two steps may share a batch)
        if o.state == "done":
            latest[(o.job.kind, o.job.key)] = o
    ledger = cast(sa.Table, LedgerEntry.__table__)
    gone = [{"b_kind": k, "b_key": key} for (k, key), o in latest.items() if o.job.action == "delete"]
    if gone:
        await db.execute(
            sa.delete(ledger).where(
                ledger.c.kind == sa.bindparam("b_kind"), ledger.c.external_key == sa.bindparam("b_key")
            ),
            gone,
        )
    rows = [
        {"kind": k, "external_key": key, "body": o.job.body or {},
         "body_hash": o.job.body_hash or body_hash(o.job.body or {}),
         "pushed_at": o.at, "operation_id": o.job.op_id}
        for (k, key), o in latest.items() if o.job.action != "delete"
    ]  # fmt: skip
    if rows:
        # executemany of one cached statement: a multi-row VALUES would be compiled afresh for every
        # batch (thousands of bind parameters; profiled as most of a flush's CPU)
        stmt = (sqlite_insert if db.get_bind().dialect.name == "sqlite" else pg_insert)(ledger)
        await db.execute(
            stmt.on_conflict_do_update(
                index_elements=[ledger.c.kind, ledger.c.external_key],
                set_={c: stmt.excluded[c] for c in ("body", "body_hash", "pushed_at", "operation_id")},
            ),
            rows,
        )
