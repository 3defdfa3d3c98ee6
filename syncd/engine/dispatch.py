"""The dependency scheduler: journaled jobs sent by a pool of workers, each as soon as it may be.

A job is sent as soon as every dependency it has in this drive has settled ``done`` (not when its
whole level has: no idle workers at level boundaries); a job with a dependency that did not end
``done`` is skipped, and so are its own dependants.  Dependencies always sit in lower levels, and
levels are taken in order, so a dependency is known before its dependants.  After a
configuration-fatal answer nothing more is sent: the rest is counted pending.

The dispatcher knows jobs and outcomes only; sending one is the caller's ``send`` (see
:mod:`syncd.engine.apply`), recording an outcome the caller's ``settle``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from syncd import metrics
from syncd.engine.journal import Job
from syncd.engine.progress import NULL_PROGRESS, Progress
from syncd.states import OpState

log = structlog.get_logger("syncd.engine.apply")

#: how a settled dependency ended, as a message names it
_ENDED = {OpState.DONE: "done", OpState.FAILED: "failed", OpState.SKIPPED: "was skipped",
          OpState.PENDING: "is pending", OpState.SUPERSEDED: "is no longer wanted",
          OpState.COLLIDED: "collided with a member WORKBOX holds unmapped"}  # fmt: skip


def blocked_reason(seq: int, state: OpState, why: str) -> str:
    """Why a job is skipped: its dependency ``seq`` ended in ``state`` (``why``: that one's error)."""
    return f"depends on operation #{seq}, which {_ENDED[state]}: {why}".strip(": ")


@dataclass(frozen=True)
class Answer:
    """What became of one send: its state, and for ``abort`` the configuration error that stops all."""

    state: OpState
    code: str | None = None
    message: str = ""
    abort: bool = False


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
    #: creates WORKBOX answered "already exists", replayed as updates (syncd.engine.apply)
    replayed_creates: int = 0
    #: members refused because an unmapped member holds the e-mail address (syncd.engine.collisions)
    collided: list[Failure] = field(default_factory=list)
    #: re-assertions answered "unknown key" and created again: kind → count (syncd.engine.reassert)
    drift_repaired: Counter[str] = field(default_factory=Counter)

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
        self.replayed_creates += other.replayed_creates
        self.collided.extend(other.collided)
        self.drift_repaired.update(other.drift_repaired)

    def outcomes_of(self, action: str) -> dict[str, int]:
        """result → count of this action's operations."""
        out: Counter[str] = Counter()
        for (_, act, result), n in self.outcomes.items():
            if act == action:
                out[result] += n
        return dict(out)

    @property
    def superseded(self) -> int:
        return sum(n for (_, _, result), n in self.outcomes.items() if result == OpState.SUPERSEDED)

    def describe(self) -> str:
        """``user delete superseded 5, dept create done 1``: what became of these operations."""
        return ", ".join(f"{k} {a} {r} {n}" for (k, a, r), n in sorted(self.outcomes.items()))

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{kind: {action: {result: n}}}`` for the run record."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (kind, action, result), n in sorted(self.outcomes.items()):
            out.setdefault(kind, {}).setdefault(action, {})[result] = n
        return out


class Settle(Protocol):
    """Records an outcome (:meth:`syncd.engine.journal.SettleBatcher.settle`)."""

    def __call__(
        self, job: Job, state: OpState, *, error: str | None = ..., code: str | None = ...
    ) -> None: ...


class Dispatcher:
    """One drive: the jobs of ``levels`` (as ``jobs_of`` yields them) sent by ``concurrency`` workers.

    ``settled``: seq → (state, error) of dependencies settled earlier and not among these jobs.
    ``check``: called before each send; raises to stop the sends (fenced out, database lost).
    """

    def __init__(
        self,
        *,
        send: Callable[[Job], Awaitable[Answer]],
        settle: Settle,
        check: Callable[[], None],
        concurrency: int,
        total: int,
        settled: Mapping[int, tuple[OpState, str]] | None = None,
        progress: Progress = NULL_PROGRESS,
    ) -> None:
        self._send, self._settle, self._check = send, settle, check
        self.concurrency, self.total, self.progress = concurrency, total, progress
        self.result = ApplyResult()
        self._state: dict[int, OpState] = {seq: state for seq, (state, _) in (settled or {}).items()}
        self._why: dict[int, str] = {seq: error for seq, (_, error) in (settled or {}).items()}
        self._registered: set[int] = set()
        self._waiting: dict[int, int] = {}  # seq -> dependencies not settled yet
        self._dependants: dict[int, list[Job]] = collections.defaultdict(list)
        self._level_left: Counter[int] = Counter()
        self._ready: collections.deque[Job] = collections.deque()
        self._wake = asyncio.Event()
        self._loaded = False
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._started = time.monotonic()

    async def run(self, levels: Sequence[int], jobs_of: Callable[[int], Awaitable[list[Job]]]) -> ApplyResult:
        """Drive every job to an outcome; the first error of a worker or of ``jobs_of`` is raised."""
        # a pool of `concurrency` workers, not one task per operation (96k tasks at 100k employees)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._load(levels, jobs_of))
            for _ in range(self.concurrency):
                group.create_task(self._worker())
        return self.result

    # -------------------------------------------------------------------------------- scheduling

    async def _load(self, levels: Sequence[int], jobs_of: Callable[[int], Awaitable[list[Job]]]) -> None:
        try:
            for level in levels:
                self._register(await jobs_of(level))
        finally:
            self._loaded = True
            self._wake.set()

    def _register(self, jobs: list[Job]) -> None:
        for job in jobs:  # every job first: a level's jobs never depend on each other
            self._registered.add(job.seq)
            self._level_left[job.level] += 1
        for job in jobs:
            deps = [d for d in job.depends_on if d in self._registered and d not in self._state]
            if deps:
                self._waiting[job.seq] = len(deps)
                for dep in deps:
                    self._dependants[dep].append(job)
            else:
                self._release(job)

    def _release(self, job: Job) -> None:
        """Every dependency of ``job`` has settled: queue it, or skip it."""
        state = self._state
        blocked = next((d for d in job.depends_on if state.get(d, OpState.DONE) is not OpState.DONE), None)
        if blocked is None or self.result.aborted:  # after an abort, _send_one counts it pending
            self._ready.append(job)
            self._wake.set()
            return
        why = self._why.get(blocked, "")
        self._settle(job, OpState.SKIPPED, error=blocked_reason(blocked, state[blocked], why))
        state[job.seq], self._why[job.seq] = OpState.SKIPPED, why
        self.result.skipped += 1
        self.result.outcomes[(job.kind, job.action, OpState.SKIPPED)] += 1
        self._finished(job)

    def _finished(self, job: Job) -> None:
        for dependant in self._dependants.pop(job.seq, ()):
            self._waiting[dependant.seq] -= 1
            if self._waiting[dependant.seq] == 0:
                del self._waiting[dependant.seq]
                self._release(dependant)
        self._level_left[job.level] -= 1
        if self._level_left[job.level] == 0:
            self._log_level(job.level)
        if self._loaded and not self._level_left.total():
            self._wake.set()  # everything settled: idle workers may leave

    async def _worker(self) -> None:
        while True:
            if self._ready:
                job = self._ready.popleft()
                await self._send_one(job)
                self._finished(job)
            elif self._loaded and not self._level_left.total():
                return
            else:
                self._wake.clear()
                await self._wake.wait()

    # ----------------------------------------------------------------------------------- sending

    async def _send_one(self, job: Job) -> None:
        result = self.result
        if result.aborted:
            result.pending += 1
            result.outcomes[(job.kind, job.action, OpState.PENDING)] += 1
            self._state[job.seq] = OpState.PENDING
            return
        self._check()
        answer = await self._send(job)
        self._state[job.seq] = answer.state
        self._why[job.seq] = f"{answer.code or ''} {answer.message}".strip()
        if answer.abort:
            result.aborted = answer.message
            result.pending += 1
        elif answer.state is OpState.DONE:
            result.done[(job.kind, job.action)] += 1
        elif answer.state is OpState.FAILED:
            result.failed.append(Failure(job.seq, job.kind, job.key, job.action, answer.code, answer.message))
        elif answer.state is OpState.COLLIDED:
            result.collided.append(
                Failure(job.seq, job.kind, job.key, job.action, answer.code, answer.message)
            )
        else:
            result.pending += 1
        self._count(job, answer.state)

    def _count(self, job: Job, state: OpState) -> None:
        self.result.outcomes[(job.kind, job.action, state)] += 1
        counter = self._counters.get((job.kind, job.action, state))
        if counter is None:  # labels() locks and validates: once per kind, action and outcome
            counter = self._counters[(job.kind, job.action, state)] = metrics.OPERATIONS.labels(
                job.kind, job.action, state
            )
        counter.inc()
        done = sum(self.result.outcomes.values())
        if done % 25 == 0 or done == self.total:
            self.progress.update("apply to WORKBOX", done=done, total=self.total)

    def _log_level(self, level: int) -> None:
        r = self.result
        log.info(
            "apply.progress",
            level=level,
            done=r.total_done,
            failed=len(r.failed),
            skipped=r.skipped,
            pending=r.pending,
            total=self.total,
            seconds=round(time.monotonic() - self._started, 2),
        )


async def first_error_of(run: Awaitable[ApplyResult], cleanup: Callable[[], Awaitable[None]]) -> ApplyResult:
    """``run``'s result; if its task group failed, ``cleanup`` (best effort) and the first error itself."""
    try:
        return await run
    except BaseExceptionGroup as failed:  # the first error, as itself (a SyncdError mostly)
        with contextlib.suppress(Exception):  # settle what was done (unless that is what failed)
            await cleanup()
        raise failed.exceptions[0] from None
