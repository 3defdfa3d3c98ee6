"""When a plan must wait for a person's approval.  Pure.

Two rules, each giving a reason (the first that applies is the message):

* **Deletion budget**, per kind (members, departments, job grades, job positions): the deletions this
  plan makes, and those applied without approval within ``sync.delete_window`` plus this plan's, may
  not exceed ``sync.max_deletes`` or ``sync.max_delete_ratio`` of what the ledger held (now, and at the
  window's start).  Deletions someone approved do not use the budget.
* **Clock guard**: a plan that changes anything is held when today is before the last run's date or
  more than ``sync.max_clock_jump`` after it (a clock set back re-creates people who left; set forward,
  it deletes people in their notice period).

What is held (:func:`decide`): the clock guard holds the whole plan.  The budget holds the deletions of
each kind over it, and every operation that depends on one of them; the rest of the plan (new hires,
updates, deletions of kinds within budget) goes ahead, unless ``sync.hold_whole_plan`` holds it all.
All of a kind's deletions are held, not only the excess: which of them are the mistake can't be told.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from syncd.engine.plan import Op
from syncd.states import Action, Kind

#: how an operation is named across plans (an approved plan's operations are matched by it)
OpKey = tuple[str, str, str]

#: how each kind is named in a hold message
NOUNS = {
    Kind.USER: "members",
    Kind.DEPT: "departments",
    Kind.GRADE: "job grades",
    Kind.POSITION: "job positions",
}


@dataclass(frozen=True)
class Limits:
    max_deletes: int
    max_delete_ratio: float
    #: ``sync.delete_window`` as configured ("24h"), for messages
    window: str = "24h"
    #: ``sync.max_clock_jump`` in days
    max_clock_jump_days: float = 2.0
    max_clock_jump: str = "2d"


@dataclass(frozen=True)
class Window:
    """What the journal says about the last ``sync.delete_window``, per kind."""

    #: deletions applied without approval (recovered ones included)
    deleted: Mapping[str, int] = field(default_factory=dict)
    #: every deletion and creation applied, approved or not: the ledger at the window's start is
    #: today's plus the former minus the latter
    deleted_all: Mapping[str, int] = field(default_factory=dict)
    created_all: Mapping[str, int] = field(default_factory=dict)

    def at_start(self, kind: str, now: int) -> int:
        return now + self.deleted_all.get(kind, 0) - self.created_all.get(kind, 0)


@dataclass(frozen=True)
class Hold:
    """A plan split by :func:`decide`: what waits for approval and what goes ahead now."""

    reason: str
    held: list[Op]
    applied: list[Op]
    #: why the whole plan waits, if it does (the clock guard, or ``sync.hold_whole_plan``)
    whole: str | None


def op_key(op: Op) -> OpKey:
    return (op.kind, op.key, op.action)


def decide(
    ops: list[Op],
    ledger_counts: Mapping[str, int],
    limits: Limits,
    *,
    window: Window | None = None,
    today: dt.date | None = None,
    last_run: dt.date | None = None,
    exempt: frozenset[OpKey] = frozenset(),
    hold_whole_plan: bool = False,
) -> Hold | None:
    """Whether ``ops`` must wait for approval, and which of them (None: apply them all).

    ``exempt``: operations someone approved; their deletions do not use the budget, and the clock
    guard (which an approver has looked at) is not applied."""
    deletes = Counter(op.kind for op in ops if op.action == Action.DELETE and op_key(op) not in exempt)
    over: dict[Kind, str] = {}
    for kind in Kind:
        reason = budget_reason(kind, deletes[kind], ledger_counts.get(kind, 0), limits, window or Window())
        if reason:
            over[kind] = reason
    clock = None
    if ops and not exempt and today is not None and last_run is not None:
        clock = _clock(today, last_run, limits)
    if not over and clock is None:
        return None
    reason = "; ".join([*over.values(), *([clock] if clock else [])])
    if clock is not None:
        return Hold(reason, list(ops), [], whole="the clock guard holds every change")
    if hold_whole_plan:
        return Hold(reason, list(ops), [], whole="sync.hold_whole_plan = true")
    held, applied = _split(
        ops,
        {op.seq for op in ops if op.action == Action.DELETE and op.kind in over and op_key(op) not in exempt},
    )
    return Hold(reason, held, applied, whole=None)


def _split(ops: list[Op], seeds: set[int]) -> tuple[list[Op], list[Op]]:
    """``seeds`` and every operation depending on one of them (transitively); the rest."""
    held_seqs = set(seeds)
    for op in sorted(ops, key=lambda o: o.level):  # dependencies are on lower levels
        if op.seq not in held_seqs and held_seqs.intersection(op.depends_on):
            held_seqs.add(op.seq)
    held = [op for op in ops if op.seq in held_seqs]
    return held, [op for op in ops if op.seq not in held_seqs]


def hold_reason(
    ops: list[Op],
    ledger_counts: Mapping[str, int],
    limits: Limits,
    *,
    window: Window | None = None,
    today: dt.date | None = None,
    last_run: dt.date | None = None,
) -> str | None:
    """Why this plan must wait for approval, or None."""
    held = decide(ops, ledger_counts, limits, window=window, today=today, last_run=last_run)
    return held.reason if held else None


def budget_reason(kind: Kind, deletes: int, ledger: int, limits: Limits, window: Window) -> str | None:
    if deletes == 0:
        return None
    noun = NOUNS[kind]
    ratio = deletes / ledger if ledger else 1.0
    if deletes > limits.max_deletes:
        return f"plan deletes {deletes} {noun}, more than sync.max_deletes = {limits.max_deletes}"
    if ratio > limits.max_delete_ratio:
        return (
            f"plan deletes {deletes} of {ledger} {noun} ({ratio:.0%}), more than "
            f"sync.max_delete_ratio = {limits.max_delete_ratio:.0%}"
        )
    earlier = window.deleted.get(kind, 0)
    total, start = earlier + deletes, window.at_start(kind, ledger)
    base = start if start > 0 else ledger  # nothing at the window's start (a first sync): what is there now
    ratio_w = total / base if base else 1.0
    if total > limits.max_deletes or ratio_w > limits.max_delete_ratio:
        return (
            f"{earlier} {noun} deleted without approval in the last {limits.window} and {deletes} more "
            f"in this plan: {total} of {base} ({ratio_w:.0%}) at the window's start, more than "
            f"sync.max_deletes = {limits.max_deletes} or sync.max_delete_ratio = "
            f"{limits.max_delete_ratio:.0%} per sync.delete_window = {limits.window}"
        )
    return None


def _clock(today: dt.date, last_run: dt.date, limits: Limits) -> str | None:
    if today < last_run:
        return (
            f"today ({today.isoformat()}) is before the last run ({last_run.isoformat()}): the clock "
            "was set back; check it, then approve"
        )
    if (today - last_run).days > limits.max_clock_jump_days:
        return (
            f"today ({today.isoformat()}) is {(today - last_run).days} days after the last run "
            f"({last_run.isoformat()}), more than sync.max_clock_jump = {limits.max_clock_jump}: check "
            "the clock, then approve"
        )
    return None
