"""What one run did, as the CLI, the daemon and the run record see it; and that record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from syncd import metrics
from syncd.commands import command
from syncd.db import records
from syncd.engine.dispatch import ApplyResult
from syncd.engine.plan import Op, summarize
from syncd.engine.validate import Reject
from syncd.states import Action, OpState, RunResult

log = structlog.get_logger("syncd.engine")

#: create→update replays on a run whose ledger was not empty at the start that are reported as
#: adoption (on an empty ledger, any one is)
ADOPTION_REPLAYS = 10


@dataclass
class RunReport:
    run_id: int
    result: RunResult = RunResult.RUNNING
    #: a dry run's desired directory (kind → key → body), for ``syncd keys export``
    desired: dict[str, dict[str, Any]] | None = None
    plan_id: str | None = None
    ops: list[Op] = field(default_factory=list)
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    #: why (part of) the plan waits for approval
    held: str | None = None
    #: the plan that waits (approvable), its operations, and whether it is the whole plan
    held_plan_id: str | None = None
    held_ops: list[Op] = field(default_factory=list)
    hold_whole: str | None = None
    #: the plan whose operations this run applies (or, in a dry run, would apply)
    applied_plan_id: str | None = None
    stale: list[tuple[str, str, str]] = field(default_factory=list)
    quarantined: int = 0
    rejects: list[Reject] = field(default_factory=list)
    applied: ApplyResult | None = None
    recovered: ApplyResult | None = None
    #: record counts of the trusted reads, as ``"source:kind"`` (the shrink guard's window baseline)
    sources: dict[str, int] = field(default_factory=dict)
    #: how each source kind was read (``full``, ``changes``, ``reuse``: :mod:`syncd.engine.reads`)
    reads: dict[str, str] = field(default_factory=dict)
    #: an approval's operations that the current sources no longer want, and why (for the message)
    dropped: str | None = None
    #: ledger entries when the run started (None: the run stopped before it read the ledger)
    ledger_size: int | None = None
    #: objects this run's plan created that WORKBOX already held (see :meth:`settle`), else 0
    adopted: int = 0
    #: ``sync.adopt``: a create was planned for every desired entity (adopted/created/collided reported)
    adopt_mode: bool = False
    #: re-assertions this cycle makes (drift repair), by kind (a dry run: would make)
    reasserts: dict[str, int] = field(default_factory=dict)
    #: a dry run onto an empty ledger: rows of each kind's mapping form ``syncd keys fill`` keyed
    #: (None: not a first sync; empty: no form filled)
    expected_adoptions: dict[str, int] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: an interrupted run's journaled operations by state (see :meth:`interrupted_message`)
    interrupted_ops: dict[str, int] | None = None
    error: str | None = None
    #: the exit code of the error that failed the run, when it asks for more than ``failed`` gives
    #: (a configuration error: 2)
    error_exit: int = 0

    @property
    def exit_code(self) -> int:
        return max(int(self.result.exit_code), self.error_exit)

    def fail(self, error: str, *, result: RunResult = RunResult.FAILED, exit_code: int = 0) -> None:
        self.result, self.error, self.error_exit = result, error, exit_code

    def settle(self) -> None:
        """The run's result once its plan is applied: stale if a source was, failed if an operation
        failed or stayed pending (now or among the recovered ones)."""
        if self.result is RunResult.HELD:
            return
        applied, recovered = self.applied, self.recovered
        self._adoption()
        if self.stale:
            self.fail("stale source(s): " + "; ".join(self.stale_lines()), result=RunResult.STALE)
        elif (applied and (applied.failed or applied.pending or applied.aborted)) or (
            recovered and recovered.failed
        ):
            self.result = RunResult.FAILED
            if applied and applied.aborted:
                self.error = f"stopped pushing: {applied.aborted}"

    def _adoption(self) -> None:
        """Creates WORKBOX answered "already exists" are objects it holds that the ledger did not
        know: *adopted*.  Reported when the ledger was empty at the start, or when there are more
        than :data:`ADOPTION_REPLAYS` (a few can follow an earlier run's unsettled operations)."""
        n = self.applied.replayed_creates if self.applied else 0
        if (
            n and not self.adopt_mode and (self.ledger_size == 0 or n > ADOPTION_REPLAYS)
        ):  # adopt: its own line
            self.adopted = n

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
            parts += self._applied_parts(self.applied)
        if self.recovered and self.recovered.outcomes:
            parts.append(f"recovered from earlier runs: {self.recovered.describe()}")
        if self.dropped:
            parts.append(self.dropped)
        if self.adopted:
            parts.append(
                f"{self.adopted} objects adopted: WORKBOX already held them and the ledger "
                f"({self.ledger_size} entries at the start) did not know them. On a first sync onto a "
                f'tenant mapped with the keys of `{command("keys", "export")}` (README "Onboarding") '
                "that is expected; if the staging "
                'database was lost or replaced, stop syncd and restore it from a backup (README "Staging '
                'database"): objects that only the lost ledger knew are never updated or deleted'
            )
        if self.quarantined:
            parts.append(f"{self.quarantined} records in quarantine")
        parts += [f"STALE {line}" for line in self.stale_lines()]
        if self.held:
            parts.append(self._held_message())
        if self.error and not self.error.startswith("stale source(s): "):  # listed just above
            parts.append(self.error)
        return "; ".join(parts)

    def _applied_parts(self, applied: ApplyResult) -> list[str]:
        told = applied.outcomes_of(Action.REASSERT)
        parts = [
            f"{applied.total_done - told.get(OpState.DONE, 0)} applied, {len(applied.failed)} failed, "
            f"{applied.skipped} skipped, {applied.pending} pending"
        ]
        if told:
            parts.append(self._reassert_message(told))
        if self.adopt_mode:
            parts.append(self._adopt_message())
        if applied.collided:
            parts.append(
                f"{_members(len(applied.collided))} collided with members WORKBOX holds unmapped (their "
                'e-mail address is taken): quarantined as unmapped_in_workbox (README "Onboarding"), see '
                f"`{command('quarantine')}`"
            )
        return parts

    def onboarding_note(self) -> str | None:
        """Before a first sync: how many creates should adopt what WORKBOX already holds."""
        if self.expected_adoptions is None:
            return None
        creates = sum(acts.get("create", 0) for acts in self.summary.values())
        if not self.expected_adoptions:
            return (
                f"First sync: {creates} creates. If WORKBOX already holds people, departments, grades or "
                f'positions made by hand, map them before the first sync (README "Onboarding"): '
                f"`{command('keys', 'export')}` lists the keys; a create whose e-mail an unmapped member "
                "holds is quarantined as unmapped_in_workbox"
            )
        keyed = ", ".join(f"{k} {n}" for k, n in sorted(self.expected_adoptions.items()))
        return (
            f"First sync: {creates} creates, of which {sum(self.expected_adoptions.values())} are expected "
            f"to adopt existing entities ({keyed}: the rows `syncd keys fill` keyed) if the admin uploaded "
            'the filled forms; they are answered "exists" and updated. A create whose e-mail an unmapped '
            "member holds is quarantined as unmapped_in_workbox"
        )

    def _reassert_message(self, told: dict[str, int]) -> str:
        assert self.applied is not None
        repaired = self.applied.drift_repaired
        line = f"re-asserted {sum(told.values())} (" + ", ".join(
            f"{n} {state}" for state, n in sorted(told.items())
        )
        if repaired:
            line += "; drift repaired: " + ", ".join(f"{k} {n}" for k, n in sorted(repaired.items()))
            line += " deleted in WORKBOX by hand, created again"
        return line + ")"

    def _adopt_message(self) -> str:
        """``sync.adopt``: what became of the creates sent for every desired entity."""
        assert self.applied is not None
        creates = self.applied.outcomes_of(Action.CREATE)
        done, replayed = creates.get(OpState.DONE, 0), self.applied.replayed_creates
        return (
            f"sync.adopt: {replayed} adopted (WORKBOX held them under their key), {done - replayed} created, "
            f"{len(self.applied.collided)} collided (quarantined unmapped_in_workbox), "
            f"{len(self.applied.failed)} failed; set sync.adopt = false for the cycles after this one"
        )

    def stale_lines(self) -> list[str]:
        """``source kind, kind: reason`` once per source and reason (one failed login stales both of
        a source's kinds with the same reason)."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for source, kind, reason in self.stale:
            grouped.setdefault((source, reason), []).append(kind)
        return [f"{source} {', '.join(kinds)}: {reason}" for (source, reason), kinds in grouped.items()]

    def interrupted_message(self) -> str:
        """What an interruption left, and the command that finishes it."""
        again = f"`{command('--run-once')}`"
        done = (self.interrupted_ops or {}).get("done", 0)
        if not self.ops or (self.result is RunResult.DRY_RUN):
            return f"interrupted before anything was sent; {again} runs the sync again"
        left = len(self.ops) - done
        return (
            f"interrupted: {done} of {len(self.ops)} planned operations applied, {left} left; {again} "
            "finishes them (what was journaled is re-driven first)"
        )

    def _held_message(self) -> str:
        held, plan = self.held_ops, self.held_plan_id or ""
        noun = "deletes" if all(op.action == "delete" for op in held) else "operations"
        what = ", ".join(f"{k} {a} {n}" for k, acts in summarize(held).items() for a, n in acts.items())
        dry = self.result is RunResult.DRY_RUN
        if self.hold_whole:
            now = f"the whole plan is held ({self.hold_whole}): nothing {'would be ' if dry else ''}applied"
            if self.hold_whole.startswith("sync.hold_whole_plan"):
                now = f"{self.hold_whole}: nothing {'would be ' if dry else ''}applied"
        else:
            others = len(self.ops) - len(held)
            now = (
                f"the other {others} operations {'would be' if dry else 'were'} applied "
                "(sync.hold_whole_plan = false)"
            )
        return (
            f"HELD: {self.held}; {len(held)} {noun} held in plan {plan} ({what}); {now}. Review with "
            f"`{command('plan')}`, then apply the held plan with `{command('approve', plan)}`"
        )


def _members(n: int) -> str:
    return f"{n} member" if n == 1 else f"{n} members"


async def record_start(sessions: records.Sessions, trigger: str, *, sweep: bool) -> RunReport:
    """A new run, recorded as running (``sweep``: see :func:`syncd.db.records.start_run`)."""
    return RunReport(run_id=await records.start_run(sessions, trigger, sweep=sweep))


async def record_finish(sessions: records.Sessions, report: RunReport, started: float) -> None:
    """Record how the run ended, count it in the metrics and log it (``started``: monotonic)."""
    counts: dict[str, Any] = {
        "plan": report.summary,
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
        "sources": report.sources,
        "reads": report.reads,
    }
    if report.applied:
        counts["apply"] = report.applied.counts()
    if report.recovered and report.recovered.outcomes:
        counts["recovered"] = report.recovered.counts()
    repaired = report.applied.drift_repaired if report.applied else {}
    for kind, n in repaired.items():
        metrics.DRIFT_REPAIRED.labels(kind).inc(n)
    if repaired:
        counts["drift_repaired"] = dict(repaired)
    if report.adopted:
        counts["adopted"] = report.adopted
        metrics.ADOPTED.inc(report.adopted)
        log.warning(
            "apply.adopted", run_id=report.run_id, count=report.adopted, ledger_at_start=report.ledger_size
        )
    stale = [f"{s}:{k}" for s, k, _ in report.stale]
    await records.finish_run(
        sessions,
        report.run_id,
        result=report.result,
        counts=counts,
        plan_id=report.plan_id,
        stale_sources=stale,
        quarantine_size=report.quarantined,
        error=report.error,
    )
    metrics.RUNS.labels(report.result).inc()
    if report.result.succeeded:
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
        stale=stale,
    )
