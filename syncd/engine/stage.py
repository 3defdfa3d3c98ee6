"""Write each trusted snapshot into its staging table; distrust an incomplete or shrunken read.

A snapshot is written in one transaction per source kind, with a content hash per record so that
unchanged records cost nothing downstream.  The completeness guard distrusts a read that failed
part-way or whose record count fell by more than ``sync.max_source_shrink`` against the last good
snapshot, or against the good read at the start of ``sync.delete_window``: the last good snapshot
stays in force and the source is reported stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd.commands import command
from syncd.db.models import SOURCE_TABLES, SourceState, utcnow
from syncd.engine.plan import canonical
from syncd.engine.pull import Payload, Pulled, SourceKind
from syncd.engine.shared import LOAD_BATCH, shared_strings

log = structlog.get_logger("syncd.engine.stage")

#: the record kinds whose counts the completeness guard watches
GUARDED = {("infinityhr", "employee"), ("infinityhr", "department"), ("whosoff", "user")}


@dataclass
class StageOutcome:
    source: str
    kind: str
    trusted: bool
    count: int
    reason: str | None = None
    written: dict[str, int] = field(default_factory=dict)


def content_hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def _distrust(
    pulled: Pulled, state: SourceState | None, max_shrink: float, window_start: int | None = None
) -> str | None:
    """Why this read is not to be trusted, or None: it failed, or it shrank by more than
    ``max_shrink`` against the last good read, or against the good read at the deletion window's
    start (so that a source drained a little per cycle is caught too)."""
    if pulled.error is not None:
        return f"read failed: {pulled.error}"
    # (a read of changes may hold one record, unreadable: that record is quarantined, the read trusted;
    # a misconfigured dialect shows in the full reads)
    if pulled.rejects and not pulled.records and not pulled.changes:
        first = pulled.rejects[0]
        return (
            f"every one of the {len(pulled.rejects)} records was unreadable (the first: {first.reason}): "
            f"is [{pulled.source}] configured for this service's format? "
            f"`{command('doctor', '--vendor', pulled.source)}` says what to set"
        )
    if (pulled.source, pulled.kind) not in GUARDED or pulled.changes:  # a read of changes: any size
        return None
    count = len(pulled.records) + len(pulled.rejects)
    last = state.last_good_count if state is not None else None
    window = "the good read at sync.delete_window's start"
    for against, what in ((last, "the last good read"), (window_start, window)):
        if against and count < against * (1 - max_shrink):
            drop = 1 - count / against
            return (
                f"{count} records against {against} in {what} (-{drop:.0%}, more than "
                f"sync.max_source_shrink = {max_shrink:.0%})"
            )
    return None


async def stage(
    sessions: async_sessionmaker[AsyncSession],
    pulled: Mapping[SourceKind, Pulled],
    *,
    run_id: int,
    max_shrink: float,
    now: dt.datetime | None = None,
    write: bool = True,
    window_start: Mapping[SourceKind, int] | None = None,
) -> dict[SourceKind, StageOutcome]:
    """Write every trusted snapshot; record every attempt in ``source_state``.

    With ``write=False`` (a dry run, which holds no lease) the guard is applied but nothing is
    written: the staging tables belong to the leader.
    """
    now = now or utcnow()
    first = window_start or {}
    outcomes: dict[SourceKind, StageOutcome] = {}
    for (source, kind), p in sorted(pulled.items()):
        if not write:
            async with sessions() as db:
                state = await db.get(SourceState, (source, kind))
                reason = _distrust(p, state, max_shrink, first.get((source, kind)))
            outcomes[(source, kind)] = StageOutcome(source, kind, reason is None, len(p.records), reason)
            continue
        async with sessions.begin() as db:
            state = await db.get(SourceState, (source, kind))
            if state is None:
                state = SourceState(source=source, kind=kind)
                db.add(state)
            reason = _distrust(p, state, max_shrink, first.get((source, kind)))
            state.last_attempt_at = now
            if reason is not None:
                state.last_status, state.last_error = "stale", reason
                outcomes[(source, kind)] = StageOutcome(source, kind, False, len(p.records), reason)
                log.warning("stage.stale", source=source, kind=kind, reason=reason)
                continue
            if p.changes:
                written = await _write_changes(db, source, kind, p, run_id, now)
                state.last_good_count = (state.last_good_count or 0) + written["inserted"]
            else:
                written = await _write_snapshot(db, source, kind, p.records, run_id, now)
                state.last_good_count = len(p.records) + len(p.rejects)
                state.last_full_at = p.started_at or now
            state.read_from = p.started_at or now
            state.last_status, state.last_error = "ok", None
            state.last_good_run_id, state.last_good_at = run_id, now
            outcomes[(source, kind)] = StageOutcome(source, kind, True, len(p.records), written=written)
            log.info("stage.done", source=source, kind=kind, **written)
    return outcomes


async def _write_snapshot(
    db: AsyncSession, source: str, kind: str, records: Mapping[str, Payload], run_id: int, now: dt.datetime
) -> dict[str, int]:
    """The table becomes ``records``: what is new inserted, what changed updated, the rest deleted."""
    table = SOURCE_TABLES[(source, kind)]
    rows = (await db.execute(sa.select(table.c.id, table.c.content_hash))).all()
    existing: dict[str, str] = {rid: digest for rid, digest in rows}
    gone = [rid for rid in existing if rid not in records]
    return await _write(db, table, records, existing, gone, run_id, now)


async def _write_changes(
    db: AsyncSession, source: str, kind: str, changes: Pulled, run_id: int, now: dt.datetime
) -> dict[str, int]:
    """A read of changes laid over the table (:func:`syncd.engine.reads.overlay`): what it holds is
    inserted or updated, nothing else is touched (a record it could not use keeps its last good
    version)."""
    table = SOURCE_TABLES[(source, kind)]
    existing: dict[str, str] = {}
    for chunk in _chunks(list(changes.records), 1000):
        rows = await db.execute(sa.select(table.c.id, table.c.content_hash).where(table.c.id.in_(chunk)))
        existing.update({rid: digest for rid, digest in rows.all()})
    return await _write(db, table, changes.records, existing, [], run_id, now)


async def _write(
    db: AsyncSession,
    table: sa.Table,
    records: Mapping[str, Payload],
    existing: Mapping[str, str],
    gone: list[Any],
    run_id: int,
    now: dt.datetime,
) -> dict[str, int]:
    inserts, updates = [], []
    for rid, payload in records.items():
        digest = content_hash(payload)
        old = existing.get(rid)
        if old is None:
            inserts.append(
                {
                    "id": rid,
                    "payload": payload,
                    "content_hash": digest,
                    "first_seen": now,
                    "last_seen": now,
                    "last_run_id": run_id,
                }
            )
        elif old != digest:
            updates.append({"b_id": rid, "payload": payload, "content_hash": digest, "b_seen": now})
    for chunk in _chunks(inserts, 2000):
        await db.execute(sa.insert(table), chunk)
    if updates:
        stmt = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(
                payload=sa.bindparam("payload"),
                content_hash=sa.bindparam("content_hash"),
                last_seen=sa.bindparam("b_seen"),
                last_run_id=run_id,
            )
        )
        for chunk in _chunks(updates, 2000):
            await db.execute(stmt, chunk, execution_options={"synchronize_session": False})
    for chunk in _chunks(gone, 1000):
        await db.execute(sa.delete(table).where(table.c.id.in_(chunk)))
    return {
        "inserted": len(inserts),
        "updated": len(updates),
        "deleted": len(gone),
        "unchanged": len(records) - len(inserts) - len(updates),
    }


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def load_snapshot(
    sessions: async_sessionmaker[AsyncSession], source: str, kind: str
) -> dict[str, Payload]:
    table = SOURCE_TABLES[(source, kind)]
    out: dict[str, Payload] = {}
    # streamed in batches: the whole result (raw JSON, decoded rows) is never held beside the snapshot
    stmt = sa.select(table.c.id, table.c.payload).execution_options(yield_per=LOAD_BATCH)
    async with sessions() as db:
        result = await db.stream(stmt)
        async for batch in result.partitions():
            for rid, payload in batch:
                out[rid] = shared_strings(payload)
    return out
