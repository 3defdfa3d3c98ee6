"""Drift repair by re-assertion: WORKBOX cannot be read, but it can be told again.

Each cycle re-sends the ledger's body of the entities asserted longest ago: :func:`share` of the N
the ledger holds, ``ceil(N / (sync.reassert_days × cycles a day))``, so that every entity is told
again at least every ``reassert_days``, spread evenly over the cycles (``0`` turns it off).  They are
``reassert`` operations, journaled like any other: a PUT of the full body, and when WORKBOX answers
"unknown key" (the entity was deleted there by hand) a POST, counted as drift repaired
(``syncd_drift_repaired_total{kind}``).  A PUT also undoes an edit made by hand (a department
renamed).  A success changes nothing in the ledger but when the entity was last asserted; a
re-assertion refused for a missing reference makes the entities it references the first ones the
next cycle re-asserts.  Entities the plan changes anyway are not re-asserted by it.  ``syncd
reconcile`` re-asserts the whole directory (or one kind) at once.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import structlog
from apscheduler.triggers.cron import CronTrigger

from syncd import metrics
from syncd.commands import command
from syncd.config import SyncSettings
from syncd.config.section import parse_interval
from syncd.db import target
from syncd.db.records import Sessions
from syncd.engine.dispatch import ApplyResult
from syncd.engine.merge import Desired
from syncd.engine.plan import KIND_RANK, USER_REFS, Body, Op
from syncd.states import Action

log = structlog.get_logger(__name__)

#: a cron schedule's cycles a day are counted over this many days
_CRON_SAMPLE_DAYS = 7


def cycles_per_day(schedule: str) -> float:
    """How many cycles ``sync.schedule`` starts a day (a cron expression: on average over a week)."""
    interval = parse_interval(schedule)
    if interval is not None:
        return 86400 / interval
    trigger = CronTrigger.from_crontab(schedule, timezone=dt.UTC)
    start = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # a Monday: any week has the same fires
    end, fires, previous = start + dt.timedelta(days=_CRON_SAMPLE_DAYS), 0, None
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end and fires < 100_000:
        fires, previous = fires + 1, fire
        fire = trigger.get_next_fire_time(previous, previous + dt.timedelta(seconds=1))
    return max(fires, 1) / _CRON_SAMPLE_DAYS


def share(entities: int, reassert_days: float, per_day: float) -> int:
    """Entities one cycle re-asserts: ``ceil(N / (reassert_days × cycles a day))`` (0: turned off)."""
    if reassert_days <= 0 or entities <= 0:
        return 0
    return min(entities, math.ceil(entities / (reassert_days * per_day)))


def _references(kind: str, body: Body) -> list[tuple[str, str]]:
    if kind == "dept":
        parent = body.get("uprDeptExternalKey", "#")
        return [] if parent in ("#", None) else [("dept", str(parent))]
    if kind == "user":
        return [(ref_kind, str(body[name])) for name, ref_kind in USER_REFS if body.get(name)]
    return []


def operations(
    entities: Iterable[tuple[str, str]],
    ledger: Mapping[tuple[str, str], Body],
    *,
    first_seq: int,
    first_level: int,
) -> list[Op]:
    """``reassert`` operations for ``entities`` (their ledger bodies), numbered after a plan's
    (``first_seq``, ``first_level``): what an entity references, when it is re-asserted too, first."""
    chosen = {e for e in entities if e in ledger}
    level: dict[tuple[str, str], int] = {}

    def depth(entity: tuple[str, str], seen: frozenset[tuple[str, str]] = frozenset()) -> int:
        if entity not in level:
            below = [depth(r, seen | {entity}) for r in _references(entity[0], ledger[entity])
                     if r in chosen and r not in seen and r != entity]  # fmt: skip
            level[entity] = 1 + max(below) if below else 0
        return level[entity]

    for entity in chosen:
        depth(entity)
    ordered = sorted(chosen, key=lambda e: (level[e], KIND_RANK[e[0]], e[1]))
    seq = {e: first_seq + n for n, e in enumerate(ordered)}
    return [
        Op(kind, key, Action.REASSERT, ledger[(kind, key)], before=ledger[(kind, key)],
           seq=seq[(kind, key)], level=first_level + level[(kind, key)],
           depends_on=sorted(seq[r] for r in _references(kind, ledger[(kind, key)])
                             if r in seq and level[r] < level[(kind, key)]))
        for kind, key in ordered
    ]  # fmt: skip


async def choose(
    sessions: Sessions,
    settings: SyncSettings,
    ops: Sequence[Op],
    ledger: Mapping[tuple[str, str], Body],
    reconcile: Collection[str] | None,
    desired: Desired,
) -> list[Op]:
    """This cycle's re-assertions: its :func:`share` of the ledger, asserted longest ago, or
    (``reconcile``) every entity of those kinds.  Only what the sources want exactly as the ledger
    has it: none of what ``ops`` (the plan) addresses, nothing frozen or held back (a rejected record,
    a collision with an unmapped member), nothing the sources no longer want (``sync.adopt`` plans
    without the ledger: a departed member must not be re-created)."""
    busy = planned(ops)

    def wanted(entity: tuple[str, str]) -> bool:
        kind, key = entity
        return (
            entity not in busy
            and entity not in desired.frozen
            and desired.objects.get(kind, {}).get(key) == ledger.get(entity)
        )

    if reconcile is not None:
        chosen = [e for e in sorted(ledger) if e[0] in reconcile and wanted(e)]
    else:
        n = share(len(ledger), settings.reassert_days, cycles_per_day(settings.schedule))
        look = n + len(busy) + len(desired.frozen)
        oldest = await target.asserted_longest_ago(sessions, look) if n else []
        chosen = [e for e in oldest if wanted(e)][:n]
    first_seq = max((op.seq for op in ops), default=0) + 1
    first_level = max((op.level for op in ops), default=-1) + 1
    return operations(chosen, ledger, first_seq=first_seq, first_level=first_level)


#: days past ``sync.reassert_days`` before the lag is worth a warning (a cycle's share is rounded up, so
#: on schedule the oldest assertion is never older than reassert_days)
BEHIND_SLACK_DAYS = 1

#: a re-assertion WORKBOX refused is tried again after this, not every cycle (it would take the
#: cycle's whole share while it keeps failing, and nothing else would be re-asserted)
RETRY_REFUSED = dt.timedelta(days=1)


async def after_apply(
    sessions: Sessions,
    settings: SyncSettings,
    applied: ApplyResult | None,
    ledger: Mapping[tuple[str, str], Body],
) -> None:
    """A refused re-assertion due again in :data:`RETRY_REFUSED`, what it references re-asserted first
    next time; the lag metric."""
    if applied is not None:
        refused = {(f.kind, f.key) for f in applied.failed if f.action == Action.REASSERT}
        refused |= {(f.kind, f.key) for f in applied.collided if f.action == Action.REASSERT}
        if refused and settings.reassert_days > 0:
            period = dt.timedelta(days=settings.reassert_days)
            due_in = dt.datetime.now(dt.UTC) - period + min(RETRY_REFUSED, period)
            await target.count_as_asserted(sessions, refused, due_in)
        await target.assert_again_soon(sessions, references_of(refused, ledger) - refused)
    oldest = await target.oldest_assertion(sessions)
    lag = (dt.datetime.now(dt.UTC) - oldest).total_seconds() if oldest else 0.0
    metrics.REASSERT_LAG.set(max(lag, 0.0))
    if settings.reassert_days > 0 and lag > (settings.reassert_days + BEHIND_SLACK_DAYS) * 86400:
        log.warning(
            "reassert.behind",
            lag_days=round(lag / 86400, 1),
            reassert_days=settings.reassert_days,
            why=(
                f"an entity was last told to WORKBOX {lag / 86400:.1f} days ago: the share a cycle "
                f"re-asserts follows sync.schedule ({settings.schedule}), and fewer cycles ran (a timer on "
                "another calendar, cycles skipped or failed); "
                f"`{command('reconcile')}` re-asserts everything now"
            ),
        )


def references_of(
    failed: Collection[tuple[str, str]], ledger: Mapping[tuple[str, str], Body]
) -> set[tuple[str, str]]:
    """What re-assertions refused (a reference missing in WORKBOX) reference: re-asserted next."""
    return {ref for entity in failed if entity in ledger for ref in _references(entity[0], ledger[entity])}


def planned(ops: Sequence[Op]) -> set[tuple[str, str]]:
    """Entities a plan's operations address (not re-asserted beside them)."""
    return {(op.kind, op.key) for op in ops}
