"""Pull both sources concurrently and write each trusted snapshot into its staging table.

A snapshot is written in one transaction per source kind, with a content hash per record so that
unchanged records cost nothing downstream.  The completeness guard distrusts a read that failed
part-way or whose record count fell by more than ``sync.max_source_shrink`` against the last good
snapshot: that snapshot stays in force and the source is reported stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd.db.models import SOURCE_TABLES, SourceState, utcnow
from syncd.engine.merge import Reject
from syncd.engine.plan import canonical
from syncd.engine.progress import NULL_PROGRESS, Progress
from syncd.errors import SyncdError
from syncd.vendors import (
    Department,
    Employee,
    InfinityHRClient,
    InvalidRecord,
    WhosOffClient,
    WhosOffDepartment,
    WhosOffUser,
)

log = structlog.get_logger("syncd.engine.stage")

Payload = dict[str, Any]
SourceKind = tuple[str, str]
#: the record kinds whose counts the completeness guard watches
GUARDED = {("infinityhr", "employee"), ("infinityhr", "department"), ("whosoff", "user")}


@dataclass
class Pulled:
    source: str
    kind: str
    records: dict[str, Payload] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class StageOutcome:
    source: str
    kind: str
    trusted: bool
    count: int
    reason: str | None = None
    written: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- normalisation


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


#: staged employee fields; ``last_modified`` is the vendor's bookkeeping, not directory data
_EMPLOYEE_FIELDS = tuple(f.name for f in dataclasses.fields(Employee) if f.name != "last_modified")


def employee_payload(e: Employee) -> Payload:
    """The staged form of an employee.  SSN and PersonalEmail do not exist here (dropped at parse)."""
    # a shallow dict (the values are immutable): dataclasses.asdict deep-copies, a third of a no-op pull
    data = {name: getattr(e, name) for name in _EMPLOYEE_FIELDS}
    data["hire_date"] = _iso(e.hire_date)
    data["termination_date"] = _iso(e.termination_date)
    return data


def department_payload(d: Department) -> Payload:
    return {"code": d.code, "name": d.name, "parent_code": d.parent_code, "is_active": d.is_active}


def wo_user_payload(u: WhosOffUser) -> Payload:
    return {
        "user_id": str(u.user_id), "staff_code": u.staff_code, "first_name": u.first_name,
        "middle_name": u.middle_name, "last_name": u.last_name, "email": u.email_contact,
        "title": u.title, "department_id": u.department_id, "status_id": u.status_id,
        "work_telephone": u.work_telephone, "mobile_telephone": u.mobile_telephone,
        "employment_ended_date": _iso(u.employment_ended_date),
    }  # fmt: skip


def wo_department_payload(d: WhosOffDepartment) -> Payload:
    return {"department_id": str(d.department_id), "name": d.name}


def content_hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def _collect(
    source: str, kind: str, items: list[tuple[str, Payload]], invalid: list[InvalidRecord]
) -> Pulled:
    """Records by id; an id that appears twice is rejected in every copy (which one is right is unknown)."""
    out = Pulled(source, kind)
    seen: dict[str, int] = {}
    for rid, _ in items:
        seen[rid] = seen.get(rid, 0) + 1
    for rid, payload in items:
        if seen[rid] > 1:
            out.rejects.append(
                Reject(
                    source,
                    kind,
                    rid,
                    "duplicate_id",
                    f"id {rid!r} appears {seen[rid]} times in one read",
                    payload,
                )
            )
        else:
            out.records[rid] = payload
    for bad in invalid:
        out.rejects.append(Reject(source, kind, bad.record_id, "unparseable", bad.reason, bad.payload))
    return out


# ------------------------------------------------------------------------------------- pulling


async def _timed(source: str, kind: str, fn: Callable[[], Awaitable[Pulled]]) -> Pulled:
    start = time.monotonic()
    try:
        pulled = await fn()
    except (SyncdError, OSError, TimeoutError) as exc:
        pulled = Pulled(source, kind, error=f"{type(exc).__name__}: {exc}")
        log.warning("pull.failed", source=source, kind=kind, error=pulled.error)
    pulled.seconds = time.monotonic() - start
    if pulled.error is None:
        log.info(
            "pull.done",
            source=source,
            kind=kind,
            records=len(pulled.records),
            rejected=len(pulled.rejects),
            seconds=round(pulled.seconds, 3),
        )
    return pulled


async def pull_infinityhr_employees(client: InfinityHRClient, progress: Progress = NULL_PROGRESS) -> Pulled:
    items: list[tuple[str, Payload]] = []
    invalid: list[InvalidRecord] = []
    task = "pull InfinityHR employees"
    async with contextlib.aclosing(client.iter_employee_pages()) as pages:
        async for page in pages:
            items.extend((e.employee_id, employee_payload(e)) for e in page.employees)
            invalid.extend(page.invalid)
            read = len(items) + len(invalid)
            log.info(
                "pull.progress",
                source="infinityhr",
                kind="employee",
                page=page.page_number,
                read=read,
                total=page.total_count,
            )
            progress.update(task, done=read, total=page.total_count)
    progress.close(task)
    return _collect("infinityhr", "employee", items, invalid)


async def pull_infinityhr_departments(client: InfinityHRClient) -> Pulled:
    depts, invalid = await client.get_departments()
    return _collect("infinityhr", "department", [(d.code, department_payload(d)) for d in depts], invalid)


async def pull_whosoff_users(client: WhosOffClient) -> Pulled:
    users, invalid = await client.get_users(status_id=99)
    return _collect("whosoff", "user", [(str(u.user_id), wo_user_payload(u)) for u in users], invalid)


async def pull_whosoff_departments(client: WhosOffClient) -> Pulled:
    depts, invalid = await client.get_departments()
    items = [(str(d.department_id), wo_department_payload(d)) for d in depts]
    return _collect("whosoff", "department", items, invalid)


async def pull_all(
    ihr: InfinityHRClient, wo: WhosOffClient, progress: Progress = NULL_PROGRESS
) -> dict[SourceKind, Pulled]:
    """Both sources at once; departments and employees of InfinityHR one after the other (one session)."""

    async def infinityhr() -> list[Pulled]:
        depts = await _timed("infinityhr", "department", lambda: pull_infinityhr_departments(ihr))
        emps = await _timed("infinityhr", "employee", lambda: pull_infinityhr_employees(ihr, progress))
        return [depts, emps]

    async def whosoff() -> list[Pulled]:
        return list(
            await asyncio.gather(
                _timed("whosoff", "user", lambda: pull_whosoff_users(wo)),
                _timed("whosoff", "department", lambda: pull_whosoff_departments(wo)),
            )
        )

    results = await asyncio.gather(infinityhr(), whosoff())
    return {(p.source, p.kind): p for group in results for p in group}


# ------------------------------------------------------------------------------------- staging


def _distrust(pulled: Pulled, state: SourceState | None, max_shrink: float) -> str | None:
    if pulled.error is not None:
        return f"read failed: {pulled.error}"
    last = state.last_good_count if state is not None else None
    count = len(pulled.records) + len(pulled.rejects)
    if (pulled.source, pulled.kind) in GUARDED and last and count < last * (1 - max_shrink):
        drop = 1 - count / last
        return (
            f"{count} records against {last} in the last good read (-{drop:.0%}, more than "
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
) -> dict[SourceKind, StageOutcome]:
    """Write every trusted snapshot; record every attempt in ``source_state``.

    With ``write=False`` (a dry run, which holds no lease) the guard is applied but nothing is
    written: the staging tables belong to the leader.
    """
    now = now or utcnow()
    outcomes: dict[SourceKind, StageOutcome] = {}
    for (source, kind), p in sorted(pulled.items()):
        if not write:
            async with sessions() as db:
                reason = _distrust(p, await db.get(SourceState, (source, kind)), max_shrink)
            outcomes[(source, kind)] = StageOutcome(source, kind, reason is None, len(p.records), reason)
            continue
        async with sessions.begin() as db:
            state = await db.get(SourceState, (source, kind))
            if state is None:
                state = SourceState(source=source, kind=kind)
                db.add(state)
            reason = _distrust(p, state, max_shrink)
            state.last_attempt_at = now
            if reason is not None:
                state.last_status, state.last_error = "stale", reason
                outcomes[(source, kind)] = StageOutcome(source, kind, False, len(p.records), reason)
                log.warning("stage.stale", source=source, kind=kind, reason=reason)
                continue
            written = await _write_snapshot(db, source, kind, p.records, run_id, now)
            state.last_status, state.last_error = "ok", None
            state.last_good_run_id, state.last_good_at = run_id, now
            state.last_good_count = len(p.records) + len(p.rejects)
            outcomes[(source, kind)] = StageOutcome(source, kind, True, len(p.records), written=written)
            log.info("stage.done", source=source, kind=kind, **written)
    return outcomes


async def _write_snapshot(
    db: AsyncSession, source: str, kind: str, records: Mapping[str, Payload], run_id: int, now: dt.datetime
) -> dict[str, int]:
    table = SOURCE_TABLES[(source, kind)]
    rows = (await db.execute(sa.select(table.c.id, table.c.content_hash))).all()
    existing: dict[str, str] = {rid: digest for rid, digest in rows}
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
    gone = [rid for rid in existing if rid not in records]
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
    async with sessions() as db:
        rows = (await db.execute(sa.select(table.c.id, table.c.payload))).all()
    return {rid: payload for rid, payload in rows}
