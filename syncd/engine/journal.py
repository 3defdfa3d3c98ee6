"""The journal: every operation written as ``pending`` before it is sent, and settled after.

An operation's outcome (``done`` / ``failed`` / ``skipped`` / ``superseded``, ``sent_at`` = when its
first answer was recorded) is settled in the same transaction as the ledger change it implies, so the
ledger never claims something WORKBOX was not told.  Outcomes are settled in batches (:class:`SettleBatcher`);
an operation whose outcome was not settled when the process died stays ``pending``, and recovery
re-drives it.  Every write checks the fencing token: a process that lost the leader lease journals,
sends and settles nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd.db.models import Lease, LedgerEntry, Operation, Plan, utcnow
from syncd.engine.plan import Op, body_hash
from syncd.errors import SyncdError
from syncd.states import Action, OpState, PlanStatus

#: outcomes are settled in batches: at most this many, or this often (seconds).  A crash loses at
#: most one batch of settles; those operations stay pending and are re-driven idempotently.
MAX_BATCH = 500
FLUSH_SECONDS = 0.2
#: rows per INSERT of a journal write
INSERT_CHUNK = 2000
#: outcomes settled without a request to WORKBOX
UNSENT = (OpState.SKIPPED, OpState.SUPERSEDED)


@dataclass
class Job:
    """A journaled operation, as the dispatcher sends it."""

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
    #: the plan it belongs to (None: journaled by hand, or by no plan syncd knows)
    plan_id: str | None = None


class FencedOut(SyncdError):
    """Another process took the leader lease: this one must not journal, send or settle anything."""

    def __init__(self, token: int) -> None:
        super().__init__(
            f"lost the leader lease (fencing token {token} is no longer current): stopped applying; "
            "the new leader re-drives what this run left unsettled"
        )


class Journal:
    """Journal writes and reads for one leader (``fencing_token``: its lease; None without a lease)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], fencing_token: int | None) -> None:
        self.sessions = sessions
        self.fencing_token = fencing_token
        #: one writer at a time (SQLite): journal writes and settles take turns
        self.write_lock = asyncio.Lock()

    async def check_fence(self, db: AsyncSession) -> None:
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

    async def write(
        self, run_id: int, plan_id: str, ops: Sequence[Op], plan_of: Mapping[int, str] | None = None
    ) -> list[Job]:
        """Write ``ops`` as ``pending`` in one transaction (before any of them is sent); their jobs.
        ``plan_of``: seq → the plan an operation belongs to, where not ``plan_id`` (an approved one)."""
        now = utcnow()
        plans = [plan_of.get(op.seq, plan_id) for op in ops] if plan_of else [plan_id] * len(ops)
        hashes = [body_hash(op.body) if op.body is not None else None for op in ops]
        rows = [
            {"run_id": run_id, "plan_id": op_plan, "seq": op.seq, "level": op.level, "kind": op.kind,
             "external_key": op.key, "action": op.action, "body": op.body,
             "body_hash": hashed, "depends_on": op.depends_on,
             "state": OpState.PENDING, "attempts": 0, "fencing_token": self.fencing_token,
             "created_at": now, "updated_at": now}
            for op, hashed, op_plan in zip(ops, hashes, plans, strict=True)
        ]  # fmt: skip
        table = cast(sa.Table, Operation.__table__)
        seqs = [op.seq for op in ops] or [0]
        async with self.sessions.begin() as db:
            await self.check_fence(db)  # even with nothing to write: a fenced-out leader learns it here
            for i in range(0, len(rows), INSERT_CHUNK):
                await db.execute(sa.insert(table), rows[i : i + INSERT_CHUNK])
            # ids by seq (not RETURNING: in parameter order, SQLite would insert row by row)
            found = await db.execute(
                sa.select(table.c.seq, table.c.id).where(
                    table.c.run_id == run_id,
                    table.c.plan_id.in_(sorted(set(plans) or {plan_id})),
                    table.c.seq.between(min(seqs), max(seqs)),
                )
            )
            id_of = {seq: op_id for seq, op_id in found.all()}
        # the jobs come from the operations in hand (not read back): one copy of each body in memory
        return [
            Job(id_of[op.seq], run_id, op.seq, op.level, op.kind, op.key, op.action, op.body,
                list(op.depends_on), digest, op_plan)
            for op, digest, op_plan in zip(ops, hashes, plans, strict=True)
        ]  # fmt: skip

    async def unsettled(self) -> list[Job]:
        """Every operation still ``pending``, by run and seq."""
        cols = (
            Operation.id, Operation.run_id, Operation.seq, Operation.level, Operation.kind,
            Operation.external_key, Operation.action, Operation.body, Operation.depends_on,
            Operation.body_hash, Operation.plan_id,
        )  # fmt: skip
        stmt = sa.select(*cols).where(Operation.state == OpState.PENDING)
        async with self.sessions() as db:
            rows = (await db.execute(stmt.order_by(Operation.run_id, Operation.seq))).all()
        return [
            Job(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], list(r[8] or []), r[9], plan_id=r[10])
            for r in rows
        ]

    async def plans_of(self, plan_ids: Collection[str]) -> dict[str, tuple[PlanStatus, dict[str, Any]]]:
        """plan id → (status, summary) of the stored plans among ``plan_ids``."""
        async with self.sessions() as db:
            rows = await db.execute(
                sa.select(Plan.id, Plan.status, Plan.summary).where(Plan.id.in_(sorted(plan_ids)))
            )
            return {pid: (PlanStatus(status), summary or {}) for pid, status, summary in rows.all()}

    async def journaled_counts(self, plan_ids: Collection[str]) -> Counter[tuple[str, str, str]]:
        """(plan id, kind, action) → operations journaled for those plans, settled or not."""
        async with self.sessions() as db:
            rows = await db.execute(
                sa.select(Operation.plan_id, Operation.kind, Operation.action, sa.func.count())
                .where(Operation.plan_id.in_(sorted(plan_ids)))
                .group_by(Operation.plan_id, Operation.kind, Operation.action)
            )
            return Counter({(p, k, a): n for p, k, a, n in rows.all()})

    async def states_of(self, run_id: int, seqs: Sequence[int]) -> dict[int, tuple[OpState, str]]:
        """seq → (state, last error) of operations ``seqs`` of run ``run_id``."""
        out: dict[int, tuple[OpState, str]] = {}
        ids = sorted(seqs)
        async with self.sessions() as db:
            for i in range(0, len(ids), 1000):
                rows = await db.execute(
                    sa.select(Operation.seq, Operation.state, Operation.last_error).where(
                        Operation.run_id == run_id, Operation.seq.in_(ids[i : i + 1000])
                    )
                )
                for seq, state, error in rows.all():
                    out[seq] = (OpState(state), error or "")
        return out


@dataclass
class _Outcome:
    job: Job
    state: OpState
    error: str | None
    code: str | None
    at: dt.datetime


class SettleBatcher:
    """Gathers outcomes and settles them in batches, each ONE transaction: journal states, then ledger.

    Dependants need only the in-memory outcome, so nobody waits for a flush.  An outcome not yet
    flushed when the process dies leaves its operation pending; the next start re-drives it
    idempotently, so batching costs nothing in safety and saves a transaction per operation.  The
    first error of a background flush (or of any writer that reports one with :meth:`fail`) stops
    the sends: :meth:`raise_error` raises it.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._batch: list[_Outcome] = []
        self._flushed = time.monotonic()
        self._flushing: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def settle(self, job: Job, state: OpState, *, error: str | None = None, code: str | None = None) -> None:
        """Record an outcome; it reaches the database with the next batch."""
        self._batch.append(_Outcome(job, state, error, code, utcnow()))
        if len(self._batch) >= MAX_BATCH or time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self._flush_soon()

    def fail(self, exc: BaseException) -> None:
        """A writer failed (the database is not keeping up, or we are fenced out): send nothing more."""
        self._error = self._error or exc

    def raise_error(self) -> None:
        self._reap()
        if self._error is not None:
            raise self._error

    async def flush_all(self) -> None:
        if self._flushing is not None:
            await asyncio.wait([self._flushing])
        self.raise_error()
        while self._batch:
            await self._flush()

    def _flush_soon(self) -> None:
        self._reap()
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
            self._flushing.add_done_callback(self._collect)

    def _collect(self, task: asyncio.Task[None]) -> None:
        """Always collect a background flush's error (asyncio would otherwise log it as never
        retrieved, with a traceback, when the run ends on another error first)."""
        if not task.cancelled() and task.exception() is not None:
            self.fail(cast(BaseException, task.exception()))

    def _reap(self) -> None:
        task = self._flushing
        if task is not None and task.done():
            self._flushing = None
            self._collect(task)

    async def _flush(self) -> None:
        async with self.journal.write_lock:
            batch, self._batch = self._batch, []
            self._flushed = time.monotonic()
            if batch:
                async with self.journal.sessions.begin() as db:
                    await self.journal.check_fence(db)
                    await _write_outcomes(db, batch)


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
                "b_inc": 0 if o.state in UNSENT else 1,
                "b_at": o.at,
                "b_settled": o.at if o.state.settled else None,
                "b_sent": None if o.state in UNSENT else o.at,
            }
            for o in batch
        ],
    )
    await _write_ledger(db, batch)


async def _write_ledger(db: AsyncSession, batch: list[_Outcome]) -> None:
    """The ledger as the ``done`` outcomes of ``batch`` leave it."""
    latest: dict[tuple[str, str], _Outcome] = {}
    for o in batch:  # the last outcome per object wins (a rotation's two steps may share a batch)
        if o.state is OpState.DONE:
            latest[(o.job.kind, o.job.key)] = o
    ledger = cast(sa.Table, LedgerEntry.__table__)
    gone = [{"b_kind": k, "b_key": key} for (k, key), o in latest.items() if o.job.action == Action.DELETE]
    if gone:
        await db.execute(
            sa.delete(ledger).where(
                ledger.c.kind == sa.bindparam("b_kind"), ledger.c.external_key == sa.bindparam("b_key")
            ),
            gone,
        )
    told = [{"b_kind": k, "b_key": key, "b_at": o.at} for (k, key), o in latest.items()
            if o.job.action == Action.REASSERT]  # fmt: skip
    if told:  # the body is the ledger's: only when it was last told changes
        await db.execute(
            sa.update(ledger)
            .where(ledger.c.kind == sa.bindparam("b_kind"), ledger.c.external_key == sa.bindparam("b_key"))
            .values(asserted_at=sa.bindparam("b_at")),
            told,
        )
    rows = [
        {"kind": k, "external_key": key, "body": o.job.body or {},
         "body_hash": o.job.body_hash or body_hash(o.job.body or {}),
         "pushed_at": o.at, "operation_id": o.job.op_id, "asserted_at": o.at}
        for (k, key), o in latest.items() if o.job.action not in (Action.DELETE, Action.REASSERT)
    ]  # fmt: skip
    if rows:
        # executemany of one cached statement: a multi-row VALUES would be compiled afresh for every
        # batch (thousands of bind parameters)
        stmt = (sqlite_insert if db.get_bind().dialect.name == "sqlite" else pg_insert)(ledger)
        await db.execute(
            stmt.on_conflict_do_update(
                index_elements=[ledger.c.kind, ledger.c.external_key],
                set_={
                    c: stmt.excluded[c]
                    for c in ("body", "body_hash", "pushed_at", "operation_id", "asserted_at")
                },
            ),
            rows,
        )
