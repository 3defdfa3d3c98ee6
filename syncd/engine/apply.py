"""Operations → WORKBOX: journal a plan, drive it, re-drive what an earlier run left unsettled.

Every operation is journaled before it is sent and settled after (:mod:`syncd.engine.journal`); the
scheduler that sends them is :mod:`syncd.engine.dispatch`.  An unsettled operation may or may not
have reached WORKBOX; recovery re-drives it either way.

Replays are idempotent, which is what makes a crash harmless: a create answered "already exists" is
followed by an update with the journaled body (counted: a plan's creates that WORKBOX already holds
are objects the ledger did not know, reported as *adopted* by :mod:`syncd.engine.run_report`); an
update answered "not found" becomes a create; a delete answered "not found" counts as done.  A
rejected operation fails alone with its vendor code and the operations that depend on it are
skipped; a transient failure that outlived its retries is left ``pending`` for the next run, which
re-drives unsettled operations before it plans.  A configuration-fatal answer (E901, E903, gateway
401) stops the apply.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import cast

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd import metrics
from syncd.engine.dispatch import Answer, ApplyResult, Dispatcher, first_error_of
from syncd.engine.journal import Job, Journal, SettleBatcher
from syncd.engine.plan import Op
from syncd.engine.progress import NULL_PROGRESS, Progress
from syncd.errors import (
    AlreadyExistsError,
    EmailTakenError,
    NotFoundError,
    QuotaExceededError,
    RejectedError,
    SyncdError,
    VendorConfigError,
)
from syncd.states import Action, OpState, PlanStatus
from syncd.vendors import Kind, WorkboxClient

log = structlog.get_logger("syncd.engine.apply")

#: of pending operations (and given the ids of approved plans), those the current sources no longer
#: want: op id → why
Unwanted = Callable[[Sequence[Job], frozenset[str]], Awaitable[dict[int, str]]]

#: operations per journal transaction for the levels journaled while others are applied
JOURNAL_CHUNK = 250
#: the journal's error code, and the quarantine's reason, of a member refused because an unmapped
#: WORKBOX member holds its e-mail address
COLLIDED_CODE = "unmapped_in_workbox"


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
        self.workbox = workbox
        self.concurrency = concurrency
        self.progress: Progress = progress
        self._journal = Journal(sessions, fencing_token)
        self._settler = SettleBatcher(self._journal)
        #: creates answered "already exists" so far (replayed as updates)
        self._replayed_creates = 0
        #: re-assertions answered "unknown key" so far (created again), by kind
        self._drift_repaired: collections.Counter[str] = collections.Counter()
        #: why pushing stopped (every worker in flight meets the same error: it is logged once)
        self._stopped: tuple[str, str | None, int | None] | None = None

    # ----------------------------------------------------------------------------------- plans

    async def journal_and_drive(
        self, run_id: int, plan_id: str, ops: Sequence[Op], *, plan_of: Mapping[int, str] | None = None
    ) -> ApplyResult:
        """Journal a plan level by level, and apply it (``plan_of``: seq → the plan an operation is
        journaled under, where not ``plan_id``: the approved plan's operations in an approval's run).

        The first level is journaled (one transaction) before anything is sent; every later level is
        journaled in the background, in short transactions, while the levels before it are applied,
        and no operation of a level is sent before the whole level is journaled.  So no operation is
        ever sent unjournaled, and the pushes do not wait for a journal of the whole plan.  A crash
        meanwhile leaves a journal that ends at a level boundary or inside the level being written:
        recovery re-drives what is journaled (its dependencies are in lower levels, so journaled too)
        and the next plan covers the rest.
        """
        by_level: dict[int, list[Op]] = collections.defaultdict(list)
        for op in ops:
            by_level[op.level].append(op)
        levels = sorted(by_level)
        if not levels:
            await self._journal.write(run_id, plan_id, [])  # nothing to write; a fenced-out leader learns it
            return await self.drive([])
        loop = asyncio.get_running_loop()
        journaled: dict[int, asyncio.Future[list[Job]]] = {level: loop.create_future() for level in levels}
        journaled[levels[0]].set_result(
            await self._journal.write(run_id, plan_id, by_level[levels[0]], plan_of)
        )
        writer = asyncio.create_task(
            self._journal_levels(run_id, plan_id, levels[1:], by_level, journaled, plan_of),
            name="journal the later levels",
        )

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

    async def _journal_levels(
        self,
        run_id: int,
        plan_id: str,
        levels: Sequence[int],
        by_level: Mapping[int, list[Op]],
        journaled: Mapping[int, asyncio.Future[list[Job]]],
        plan_of: Mapping[int, str] | None,
    ) -> None:
        for level in levels:
            jobs: list[Job] = []
            try:
                level_ops = by_level[level]
                for i in range(0, len(level_ops), JOURNAL_CHUNK):
                    async with self._journal.write_lock:  # settles wait their turn
                        jobs += await self._journal.write(
                            run_id, plan_id, level_ops[i : i + JOURNAL_CHUNK], plan_of
                        )
            except Exception as exc:
                # sends stop (as after a failed settle: the database is not keeping up or we are
                # fenced out); the level waiting for this one, and every later one, raises it
                self._settler.fail(exc)
                for future in journaled.values():
                    if not future.done():
                        future.set_exception(exc)
                raise
            journaled[level].set_result(jobs)

    async def journal(self, run_id: int, plan_id: str, ops: Sequence[Op]) -> list[Job]:
        """Journal ``ops`` in one transaction (an approved plan is journaled whole before it is driven)."""
        return await self._journal.write(run_id, plan_id, ops)

    async def drive(
        self, jobs: Sequence[Job], *, settled: Mapping[int, tuple[OpState, str]] | None = None
    ) -> ApplyResult:
        """Apply ``jobs`` (one run's operations, journaled): each as soon as its dependencies are done.

        ``settled``: seq → (state, error) of dependencies settled earlier and not among ``jobs``.
        """
        by_level: dict[int, list[Job]] = collections.defaultdict(list)
        for job in jobs:
            by_level[job.level].append(job)

        async def jobs_of(level: int) -> list[Job]:
            return by_level[level]

        return await self._drive(sorted(by_level), jobs_of, len(jobs), settled)

    async def _drive(
        self,
        levels: list[int],
        jobs_of: Callable[[int], Awaitable[list[Job]]],
        total: int,
        settled: Mapping[int, tuple[OpState, str]] | None = None,
    ) -> ApplyResult:
        dispatcher = Dispatcher(
            send=self._execute,
            settle=self._settler.settle,
            check=self._settler.raise_error,  # fenced out or database lost: send nothing more
            concurrency=self.concurrency,
            total=total,
            settled=settled,
            progress=self.progress,
        )
        replayed, repaired = self._replayed_creates, collections.Counter(self._drift_repaired)
        result = await first_error_of(dispatcher.run(levels, jobs_of), self._settler.flush_all)
        await self._settler.flush_all()
        result.replayed_creates += self._replayed_creates - replayed
        result.drift_repaired.update(self._drift_repaired - repaired)
        self.progress.close("apply to WORKBOX")
        return result

    # -------------------------------------------------------------------------------- recovery

    async def recover(self, unwanted: Unwanted | None = None) -> ApplyResult:
        """Re-drive operations an earlier run left unsettled (crash, transient failure), run by run.

        Only operations of a plan syncd applied or someone approved are re-driven, never more of a
        kind and action than that plan had; ``unwanted`` picks those the current sources no longer
        want.  The others are settled ``superseded`` and not sent.
        """
        jobs = await self._journal.unsettled()
        result = ApplyResult()
        if not jobs:
            return result
        why_not, approved = await self._illegitimate(jobs)
        if unwanted is not None:
            why_not.update(await unwanted([j for j in jobs if j.op_id not in why_not], approved))
        if why_not:
            result.merge(await self._supersede([j for j in jobs if j.op_id in why_not], why_not))
            jobs = [j for j in jobs if j.op_id not in why_not]
        log.warning(
            "apply.recovering",
            operations=len(jobs),
            runs=len({j.run_id for j in jobs}),
            superseded=len(why_not),
        )
        for run_id in sorted({j.run_id for j in jobs}):
            of_run = [j for j in jobs if j.run_id == run_id]
            result.merge(await self.drive(of_run, settled=await self._settled_dependencies(run_id, of_run)))
            if result.aborted:
                break
        return result

    async def _illegitimate(self, jobs: Sequence[Job]) -> tuple[dict[int, str], frozenset[str]]:
        """op id → why a pending operation is no plan's to re-drive: its plan is unknown, was never
        applied or approved, or the journal holds more operations of a kind and action than it had;
        and the ids of the approved plans among them."""
        plans = await self._journal.plans_of({j.plan_id for j in jobs if j.plan_id})
        journaled = await self._journal.journaled_counts(plans)
        out: dict[int, str] = {}
        for j in jobs:
            status, summary = plans.get(j.plan_id or "", (None, {}))
            if status is None:
                out[j.op_id] = "belongs to no plan syncd made"
            elif status not in (PlanStatus.APPLIED, PlanStatus.APPROVED):
                out[j.op_id] = f"its plan {j.plan_id} is {status}, neither applied nor approved"
            elif journaled[(j.plan_id or "", j.kind, j.action)] > summary.get(j.kind, {}).get(j.action, 0):
                out[j.op_id] = f"the journal holds more {j.kind} {j.action}s than plan {j.plan_id} had"
        return out, frozenset(p for p, (status, _) in plans.items() if status is PlanStatus.APPROVED)

    async def _supersede(self, jobs: Sequence[Job], why: Mapping[int, str]) -> ApplyResult:
        result = ApplyResult()
        for job in jobs:
            self._settler.settle(job, OpState.SUPERSEDED, error=f"not sent: {why[job.op_id]}")
            result.outcomes[(job.kind, job.action, OpState.SUPERSEDED)] += 1
        await self._settler.flush_all()
        counts = collections.Counter(f"{j.kind} {j.action}" for j in jobs)
        log.warning("apply.superseded", operations=len(jobs), by_kind=dict(sorted(counts.items())))
        return result

    async def _settled_dependencies(self, run_id: int, jobs: Sequence[Job]) -> dict[int, tuple[OpState, str]]:
        """How the dependencies of ``jobs`` that are not re-driven with them ended: a dependant of a
        failed or skipped operation is skipped on recovery too, as it would have been in its run."""
        missing = {d for j in jobs for d in j.depends_on} - {j.seq for j in jobs}
        return await self._journal.states_of(run_id, sorted(missing)) if missing else {}

    # ---------------------------------------------------------------------------------- sending

    async def _execute(self, job: Job) -> Answer:
        """Send one job with the replay rules; settle its outcome."""
        try:
            await self._replayable(job)
        except (VendorConfigError, QuotaExceededError) as exc:  # nothing more gets through this cycle
            why = (type(exc).__name__, exc.code, exc.status)  # the same answer to any kind or method
            if isinstance(exc, QuotaExceededError) and self._stopped != why:
                metrics.QUOTA_EXCEEDED.labels(exc.vendor).inc()
            self._settler.settle(job, OpState.PENDING, error=str(exc), code=exc.code)
            if self._stopped != why:
                self._stopped = why
                log.error("apply.stopped", kind=job.kind, key=job.key, code=exc.code, error=str(exc))
            return Answer(OpState.PENDING, exc.code, str(exc), abort=True)
        except EmailTakenError as exc:  # not a rejection: the admin has a member to map (quarantined)
            self._settler.settle(job, OpState.COLLIDED, error=str(exc), code=COLLIDED_CODE)
            log.warning("apply.collided", kind=job.kind, key=job.key, action=job.action, error=str(exc))
            return Answer(OpState.COLLIDED, COLLIDED_CODE, str(exc))
        except RejectedError as exc:
            self._settler.settle(job, OpState.FAILED, error=str(exc), code=exc.code)
            log.warning(
                "apply.rejected", kind=job.kind, key=job.key, action=job.action, code=exc.code, error=str(exc)
            )
            return Answer(OpState.FAILED, exc.code, str(exc))
        except SyncdError as exc:  # transient after retries, protocol trouble: try again next run
            code = getattr(exc, "code", None)
            self._settler.settle(job, OpState.PENDING, error=str(exc), code=code)
            log.warning("apply.pending", kind=job.kind, key=job.key, action=job.action, error=str(exc))
            return Answer(OpState.PENDING, code, str(exc))
        self._settler.settle(job, OpState.DONE)
        return Answer(OpState.DONE)

    async def _replayable(self, job: Job) -> None:
        """The job's request; a replay's answer ("exists", "not found") turned into what finishes it."""
        kind = cast(Kind, job.kind)
        body = job.body or {}
        try:
            if job.action == Action.CREATE:
                await self.workbox.create(kind, job.key, body)
            elif job.action in (Action.UPDATE, Action.REASSERT):
                await self.workbox.update(kind, job.key, body)
            else:
                await self.workbox.delete(kind, job.key)
        except AlreadyExistsError:
            # a line per replay at debug only: a run with many is reported once (run_report, "apply.adopted")
            self._replayed_creates += 1
            log.debug("apply.replay", kind=job.kind, key=job.key, action="create→update")
            await self.workbox.update(kind, job.key, body)
        except NotFoundError:
            if job.action == Action.REASSERT:  # deleted in WORKBOX by hand: drift, repaired
                log.warning("apply.drift_repaired", kind=job.kind, key=job.key, action="reassert→create")
                await self.workbox.create(kind, job.key, body)
                self._drift_repaired[job.kind] += 1
            elif job.action == Action.UPDATE:
                log.warning("apply.replay", kind=job.kind, key=job.key, action="update→create")
                await self.workbox.create(kind, job.key, body)
            # a delete of an unknown key already happened
