"""Run, plan and quarantine records: how the engine writes what it did, in plain values.

The engine decides; these functions only store.  (Read-only views for operators are in
:mod:`syncd.db.history`.)
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd.db.models import Operation, Plan, QuarantineEntry, SourceState, SyncRun, VendorFact, utcnow
from syncd.states import Action, OpState, PlanStatus, RunResult

log = structlog.get_logger("syncd.db.records")

Sessions = async_sessionmaker[AsyncSession]


def holder_id() -> str:
    """This process, as runs and leases record it (host:pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


# ------------------------------------------------------------------------------------------ runs


async def start_run(sessions: Sessions, trigger: str, *, sweep: bool) -> int:
    """Record a run as ``running``; its id.  ``sweep``: the caller holds the lease, so a run still
    ``running`` was cut short (killed, database lost) and is marked ``interrupted``."""
    async with sessions.begin() as db:
        if sweep:
            await db.execute(
                sa.update(SyncRun)
                .where(SyncRun.result == RunResult.RUNNING)
                .values(
                    result=RunResult.INTERRUPTED,
                    finished_at=utcnow(),
                    error="the process ended before the run",
                )
            )
        run = SyncRun(trigger=trigger, started_at=utcnow(), result=RunResult.RUNNING, holder=holder_id())
        db.add(run)
        await db.flush()
        return run.id


async def finish_run(sessions: Sessions, run_id: int, **values: Any) -> None:
    """Record how run ``run_id`` ended (``result``, ``counts``, ``plan_id``, ``error``, …)."""
    async with sessions.begin() as db:
        await db.execute(
            sa.update(SyncRun).where(SyncRun.id == run_id).values(finished_at=utcnow(), **values)
        )


# ----------------------------------------------------------------------------------------- plans


async def run_op_states(sessions: Sessions, run_id: int) -> dict[str, int]:
    """How many of the run's journaled operations are in each state."""
    stmt = (
        sa.select(Operation.state, sa.func.count())
        .where(Operation.run_id == run_id)
        .group_by(Operation.state)
    )
    async with sessions() as db:
        return {str(state): n for state, n in (await db.execute(stmt)).all()}


async def store_plan(sessions: Sessions, **values: Any) -> str:
    """Store a plan (``run_id``, ``plan_hash``, ``ledger_hash``, ``status``, …); its new id."""
    plan = Plan(id=str(uuid.uuid4()), created_at=utcnow(), **values)
    async with sessions.begin() as db:
        db.add(plan)
    return plan.id


async def load_plan(sessions: Sessions, plan_id: str) -> Plan | None:
    async with sessions() as db:
        return await db.get(Plan, plan_id)


async def plan_ids_starting(sessions: Sessions, prefix: str, limit: int = 3) -> list[str]:
    """The ids of plans that begin with ``prefix`` (at most ``limit``, oldest first)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    stmt = sa.select(Plan.id).where(Plan.id.like(f"{escaped}%", escape="\\"))
    async with sessions() as db:
        return list((await db.scalars(stmt.order_by(Plan.created_at).limit(limit))).all())


async def set_plan_status(
    sessions: Sessions, plan_id: str, status: PlanStatus, *, only_from: Collection[PlanStatus] = ()
) -> bool:
    """Set a plan's status (``only_from``: only if it is in one of these now); whether it was set."""
    stmt = sa.update(Plan).where(Plan.id == plan_id).values(status=status)
    if only_from:
        stmt = stmt.where(Plan.status.in_(tuple(only_from)))
    async with sessions.begin() as db:
        changed = cast(sa.CursorResult[Any], await db.execute(stmt)).rowcount
    return bool(changed)


async def count_plans(sessions: Sessions, *statuses: PlanStatus, since: dt.datetime | None = None) -> int:
    """Plans in one of ``statuses`` (made at or after ``since``)."""
    stmt = sa.select(sa.func.count()).select_from(Plan).where(Plan.status.in_(statuses))
    if since is not None:
        stmt = stmt.where(Plan.created_at >= since)
    async with sessions() as db:
        n = await db.scalar(stmt)
    return n or 0


async def same_held_plan(sessions: Sessions, plan_hash: str, since: dt.datetime) -> str | None:
    """The id of a plan still held, made at or after ``since``, with exactly these operations."""
    stmt = (
        sa.select(Plan.id)
        .where(Plan.status == PlanStatus.HELD, Plan.plan_hash == plan_hash, Plan.created_at >= since)
        .order_by(Plan.created_at.desc())
        .limit(1)
    )
    async with sessions() as db:
        found: str | None = await db.scalar(stmt)
    return found


async def supersede_held(sessions: Sessions, newer: str) -> list[str]:
    """Mark every held plan other than ``newer`` as superseded by it; their ids."""
    async with sessions.begin() as db:
        ids = list(
            (await db.execute(sa.select(Plan.id).where(Plan.status == PlanStatus.HELD, Plan.id != newer)))
            .scalars()
            .all()
        )
        if ids:
            await db.execute(
                sa.update(Plan)
                .where(Plan.id.in_(ids), Plan.status == PlanStatus.HELD)
                .values(status=PlanStatus.SUPERSEDED, superseded_by=newer)
            )
    return ids


async def record_approval(sessions: Sessions, plan_id: str, by: str) -> None:
    async with sessions.begin() as db:
        await db.execute(
            sa.update(Plan).where(Plan.id == plan_id).values(approved_by=by, approved_at=utcnow())
        )


# ----------------------------------------------------------------------------- deletion window


@dataclass(frozen=True)
class WindowCounts:
    """Operations applied since a moment, per kind: deletions of plans nobody approved, and every
    deletion and creation."""

    unapproved_deletes: dict[str, int]
    deletes: dict[str, int]
    creates: dict[str, int]


async def applied_since(sessions: Sessions, since: dt.datetime) -> WindowCounts:
    approved = Plan.status == PlanStatus.APPROVED
    stmt = (
        sa.select(Operation.kind, Operation.action, approved, sa.func.count())
        .select_from(Operation)
        .outerjoin(Plan, Plan.id == Operation.plan_id)
        .where(
            Operation.state == OpState.DONE,
            Operation.settled_at >= since,
            Operation.action.in_((Action.CREATE, Action.DELETE)),
        )
        .group_by(Operation.kind, Operation.action, approved)
    )
    unapproved: dict[str, int] = {}
    deletes: dict[str, int] = {}
    creates: dict[str, int] = {}
    async with sessions() as db:
        for kind, action, was_approved, n in (await db.execute(stmt)).all():
            into = deletes if action == Action.DELETE else creates
            into[kind] = into.get(kind, 0) + n
            if action == Action.DELETE and not was_approved:
                unapproved[kind] = unapproved.get(kind, 0) + n
    return WindowCounts(unapproved, deletes, creates)


async def first_good_counts(sessions: Sessions, since: dt.datetime) -> dict[tuple[str, str], int]:
    """(source, kind) → its record count in the first trusted read since ``since`` (runs record them
    under ``counts["sources"]`` as ``"source:kind"``)."""
    stmt = (
        sa.select(SyncRun.counts)
        .where(SyncRun.started_at >= since, SyncRun.result.notin_((RunResult.DRY_RUN, RunResult.RUNNING)))
        .order_by(SyncRun.id)
    )
    out: dict[tuple[str, str], int] = {}
    async with sessions() as db:
        for counts in (await db.execute(stmt)).scalars():
            for name, n in (counts or {}).get("sources", {}).items():
                source, _, kind = name.partition(":")
                out.setdefault((source, kind), int(n))
    return out


async def previous_result(sessions: Sessions, run_id: int) -> RunResult | None:
    """How the leader's run before ``run_id`` ended (dry runs left out; None: there was none)."""
    async with sessions() as db:
        result = await db.scalar(
            sa.select(SyncRun.result)
            .where(SyncRun.id < run_id, SyncRun.result != RunResult.DRY_RUN)
            .order_by(SyncRun.id.desc())
            .limit(1)
        )
    return RunResult(result) if result is not None else None


async def last_success_date(sessions: Sessions) -> dt.date | None:
    """The UTC date on which the latest successful run (by id) started."""
    async with sessions() as db:
        at = await db.scalar(
            sa.select(SyncRun.started_at)
            .where(SyncRun.result == RunResult.SUCCESS)
            .order_by(SyncRun.id.desc())
            .limit(1)
        )
    return at.astimezone(dt.UTC).date() if at is not None else None


async def plan_ids(sessions: Sessions, status: PlanStatus) -> list[str]:
    """Ids of the plans in ``status``, oldest first."""
    async with sessions() as db:
        stmt = sa.select(Plan.id).where(Plan.status == status).order_by(Plan.created_at)
        return list((await db.execute(stmt)).scalars().all())


# ------------------------------------------------------------------------------------ quarantine


@dataclass(frozen=True)
class QuarantineRow:
    """A record to keep in the quarantine; ``key`` identifies it across runs."""

    source: str
    kind: str
    key: str
    record_id: str | None
    reason_code: str
    reason: str
    payload: Mapping[str, Any]


async def replace_quarantine(sessions: Sessions, rows: Collection[QuarantineRow], run_id: int) -> None:
    """Make the quarantine hold exactly ``rows``: new ones added, known ones refreshed, others released."""
    now = utcnow()
    wanted = {(r.source, r.kind, r.key): r for r in rows}
    async with sessions.begin() as db:
        existing = {
            (q.source, q.kind, q.record_key): q
            for q in (await db.execute(sa.select(QuarantineEntry))).scalars()
        }
        for ident, q in existing.items():
            if ident not in wanted:
                await db.delete(q)
                log.info("quarantine.released", source=q.source, kind=q.kind, record_id=q.record_id)
        for ident, r in wanted.items():
            entry = existing.get(ident)
            if entry is None:
                db.add(_new_entry(r, now, run_id))
                log.warning(
                    "quarantine.added",
                    source=r.source,
                    kind=r.kind,
                    record_id=r.record_id,
                    reason_code=r.reason_code,
                    reason=r.reason,
                )
            else:
                entry.reason_code, entry.reason, entry.payload = r.reason_code, r.reason, dict(r.payload)
                entry.last_seen, entry.last_run_id = now, run_id


def _new_entry(r: QuarantineRow, now: dt.datetime, run_id: int) -> QuarantineEntry:
    return QuarantineEntry(
        source=r.source,
        kind=r.kind,
        record_key=r.key,
        record_id=r.record_id,
        reason_code=r.reason_code,
        reason=r.reason,
        payload=dict(r.payload),
        first_seen=now,
        last_seen=now,
        last_run_id=run_id,
    )


async def quarantined(sessions: Sessions, reason_codes: Collection[str]) -> list[QuarantineEntry]:
    """Quarantine entries with one of ``reason_codes``."""
    async with sessions() as db:
        stmt = sa.select(QuarantineEntry).where(QuarantineEntry.reason_code.in_(tuple(reason_codes)))
        return list((await db.execute(stmt)).scalars().all())


# ---------------------------------------------------------------------------------- source state


async def never_trusted(sessions: Sessions, source_kinds: Collection[tuple[str, str]]) -> list[str]:
    """Of ``source_kinds``, those with no trusted read ever, as ``"source kind"``."""
    out = []
    async with sessions() as db:
        for source, kind in sorted(source_kinds):
            state = await db.get(SourceState, (source, kind))
            if state is None or state.last_good_run_id is None:
                out.append(f"{source} {kind}")
    return out


async def vendor_fact(sessions: Sessions, vendor: str, fact: str) -> str | None:
    """A fact syncd learned about ``vendor`` earlier (see :class:`~syncd.db.models.VendorFact`)."""
    async with sessions() as db:
        row = await db.get(VendorFact, (vendor, fact))
        return row.value if row is not None else None


async def remember_vendor_fact(sessions: Sessions, vendor: str, fact: str, value: str) -> None:
    async with sessions.begin() as db:
        row = await db.get(VendorFact, (vendor, fact))
        if row is None:
            db.add(VendorFact(vendor=vendor, fact=fact, value=value, learned_at=utcnow()))
        else:
            row.value, row.learned_at = value, utcnow()
