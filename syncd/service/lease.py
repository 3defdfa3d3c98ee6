"""The leader lease: at most one process applies changes, whatever mix of daemons and one-shot runs.

* **PostgreSQL** — a session-level advisory lock held on a dedicated connection for as long as the
  process leads.  The lock dies with the connection, so when its holder exits or is killed (SIGKILL
  included) PostgreSQL releases it at once and a standby takes it at its next poll (every quarter of
  ``sync.lease_period``); TCP keepalives on that connection bound how long a holder cut off from the
  network keeps it (about ``lease_period``).  Each acquisition also bumps ``token`` in the ``leases``
  row ``leader``: the fencing token.  The applier checks, in the same transaction that journals,
  marks or settles an operation, that the row still carries its token (``FOR SHARE``), so a process
  that lost the lease while stalled or cut off cannot settle anything after a successor took over.
* **SQLite** — an exclusive ``flock`` on ``<database>.lock`` beside the database file.  The kernel
  drops it when its holder dies, so nothing ever waits for an expiry.  The same ``leases`` row records
  holder and token (for forensics and the applier's check).

The holder string is ``host:pid`` (:func:`syncd.db.records.holder_id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from syncd import metrics
from syncd.db.models import Lease as LeaseRow
from syncd.db.models import utcnow
from syncd.db.records import holder_id
from syncd.errors import LeaseHeldError

log = structlog.get_logger("syncd.service.lease")

LEADER = "leader"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TABLE = cast(sa.Table, LeaseRow.__table__)


async def _take_over(conn: AsyncConnection, holder: str, acquired_at: Any, expires_at: Any) -> int | None:
    """Make sure the ``leader`` row exists and bump its fencing token: every takeover gets a new,
    larger token, so the settles of a replaced leader are refused.  Returns the new token."""
    t = TABLE
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t)
    await conn.execute(
        insert.values(
            name=LEADER, holder="", token=0, acquired_at=_EPOCH, expires_at=_EPOCH
        ).on_conflict_do_nothing(index_elements=["name"])
    )
    token: int | None = await conn.scalar(
        sa.update(t)
        .where(t.c.name == LEADER)
        .values(holder=holder, token=t.c.token + 1, acquired_at=acquired_at, expires_at=expires_at)
        .returning(t.c.token)
    )
    return token


#: the PostgreSQL advisory lock key (advisory locks are per database)
LOCK_KEY = int.from_bytes(hashlib.sha256(b"syncd:leader").digest()[:8], "big", signed=True)


class LeaderLease:
    """Common behaviour: ``try_acquire`` / ``renew`` / ``release`` and a bounded ``acquire``."""

    def __init__(self, engine: AsyncEngine, period: float, holder: str | None = None) -> None:
        self.engine = engine
        self.period = period
        self.holder = holder or holder_id()
        #: fencing token of the current tenure (None while not held)
        self.token: int | None = None
        metrics.LEASE_HOLDER.labels(self.holder).set(0)

    @property
    def held(self) -> bool:
        return self.token is not None

    async def try_acquire(self) -> bool:
        raise NotImplementedError

    async def renew(self) -> bool:
        """Extend a held lease; False (and no longer held) if it was lost."""
        raise NotImplementedError

    async def release(self) -> None:
        raise NotImplementedError

    async def current_holder(self) -> str | None:
        """Who holds the lease now, as far as can be told (None: nobody)."""
        raise NotImplementedError

    async def acquire(self, wait: float) -> None:
        """Acquire, polling for up to ``wait`` seconds; :class:`LeaseHeldError` names the holder if not."""
        deadline = time.monotonic() + wait
        while not await self.try_acquire():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = await self.current_holder()
                raise LeaseHeldError(
                    f"another process holds the leader lease: {holder or 'unknown'} "
                    f"(waited {wait:g}s, sync.lease_wait); try again when it has finished",
                    holder=holder,
                )
            await asyncio.sleep(min(0.5, remaining))

    def _won(self, token: int) -> None:
        self.token = token
        metrics.LEASE_HOLDER.labels(self.holder).set(1)
        log.info("lease.acquired", holder=self.holder, fence=token)

    def _lost(self, why: str) -> None:
        if self.token is not None:
            log.warning("lease.lost", holder=self.holder, fence=self.token, reason=why)
        self.token = None
        metrics.LEASE_HOLDER.labels(self.holder).set(0)


class DatabaseLease(LeaderLease):
    """PostgreSQL: a session-level advisory lock on a dedicated connection, plus a fencing token.

    The lock lives exactly as long as the connection: a holder that exits or is killed drops its
    connection, PostgreSQL releases the lock at once and the next process takes it.  TCP keepalives
    on that connection (derived from ``period``) bound how long a holder cut off from the network
    keeps it.  Every acquisition bumps the token in the ``leases`` row (and the holder refreshes the
    row's ``expires_at`` as a heartbeat, which is what :meth:`current_holder` reads).
    """

    def __init__(self, engine: AsyncEngine, period: float, holder: str | None = None) -> None:
        super().__init__(engine, period, holder)
        self._conn: AsyncConnection | None = None

    def _ttl(self) -> sa.ColumnElement[dt.datetime]:
        return sa.func.now() + sa.literal(dt.timedelta(seconds=self.period), sa.Interval())

    async def try_acquire(self) -> bool:
        if self.held:
            return await self.renew()
        conn: AsyncConnection | None = None
        try:
            conn = await self.engine.connect()
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            idle, interval = max(1, int(self.period / 3)), max(1, int(self.period / 6))
            for name, value in (("idle", idle), ("interval", interval), ("count", 3)):
                await conn.execute(sa.select(sa.func.set_config(f"tcp_keepalives_{name}", str(value), False)))
            if not await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(LOCK_KEY))):
                await conn.close()
                return False
            async with self.engine.begin() as tx:
                token = await _take_over(tx, self.holder, sa.func.now(), self._ttl())
        except Exception as exc:  # database unreachable: not acquired; the caller polls again
            log.warning("lease.acquire_failed", error=f"{type(exc).__name__}: {exc}")
            if conn is not None:
                await _discard(conn)
            return False
        self._conn = conn
        if token is None:  # pragma: no cover (the row was inserted just above)
            await self._drop("lease row missing")
            return False
        self._won(int(token))
        return True

    async def renew(self) -> bool:
        conn, token = self._conn, self.token
        if conn is None or token is None:
            return False
        try:
            # the lock connection must still be alive (else PostgreSQL has released the lock) …
            await conn.scalar(sa.select(sa.literal(1)))
            # … and the token current; the heartbeat tells others who holds the lease
            async with self.engine.begin() as tx:
                current = await tx.scalar(
                    sa.update(TABLE)
                    .where(TABLE.c.name == LEADER, TABLE.c.token == token)
                    .values(expires_at=self._ttl())
                    .returning(TABLE.c.token)
                )
        except Exception as exc:
            await self._drop(f"lock connection lost: {type(exc).__name__}")
            return False
        if current is None:
            await self._drop("taken over by another process")
            return False
        return True

    async def _drop(self, why: str) -> None:
        self._lost(why)
        conn, self._conn = self._conn, None
        if conn is not None:
            await _discard(conn)

    async def release(self) -> None:
        conn, token = self._conn, self.token
        if token is None:
            return
        self.token, self._conn = None, None
        metrics.LEASE_HOLDER.labels(self.holder).set(0)
        try:
            async with self.engine.begin() as tx:
                await tx.execute(
                    sa.update(TABLE)
                    .where(TABLE.c.name == LEADER, TABLE.c.token == token)
                    .values(expires_at=_EPOCH)
                )
        except Exception as exc:  # the lock goes with the connection below all the same
            log.warning("lease.release_failed", error=f"{type(exc).__name__}: {exc}")
        if conn is not None:
            await _discard(conn)
        log.info("lease.released", holder=self.holder, fence=token)

    async def current_holder(self) -> str | None:
        try:
            async with self.engine.connect() as conn:
                row = (
                    await conn.execute(
                        sa.select(TABLE.c.holder, TABLE.c.expires_at > sa.func.now()).where(
                            TABLE.c.name == LEADER
                        )
                    )
                ).first()
        except Exception:
            return None
        return str(row[0]) if row is not None and row[1] else None


async def _discard(conn: AsyncConnection) -> None:
    """Close a lock connection for good (never back into the pool: the session must end)."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


class FileLease(LeaderLease):
    """SQLite: an exclusive ``flock`` on a file beside the database; dies with its holder."""

    def __init__(
        self, engine: AsyncEngine, period: float, path: Path | None, holder: str | None = None
    ) -> None:
        super().__init__(engine, period, holder)
        self.path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.path is not None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.holder}\n".encode(), 0)
            self._fd = fd
        try:
            token = await self._record()
        except Exception as exc:
            log.warning("lease.acquire_failed", error=f"{type(exc).__name__}: {exc}")
            self._unlock()
            return False
        self._won(token)
        return True

    async def _record(self) -> int:
        now = utcnow()
        async with self.engine.begin() as conn:
            token = await _take_over(conn, self.holder, now, now + dt.timedelta(seconds=self.period))
        if token is None:  # pragma: no cover (the row was inserted just above)
            raise RuntimeError("lease row missing")
        return int(token)

    async def renew(self) -> bool:
        return self.held

    def _unlock(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    async def release(self) -> None:
        if self.token is None:
            return
        token = self.token
        self.token = None
        metrics.LEASE_HOLDER.labels(self.holder).set(0)
        self._unlock()
        log.info("lease.released", holder=self.holder, fence=token)

    async def current_holder(self) -> str | None:
        if self.path is None:
            return None
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text or None


def lock_path(url: str) -> Path | None:
    """``<database>.lock`` beside a SQLite file (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database).with_name(Path(database).name + ".lock")


def make_lease(url: str, engine: AsyncEngine, period: float) -> LeaderLease:
    if make_url(url).get_backend_name() == "sqlite":
        return FileLease(engine, period, lock_path(url))
    return DatabaseLease(engine, period)


@contextlib.asynccontextmanager
async def hold_lease(
    url: str, engine: AsyncEngine, *, period: float, wait: float
) -> AsyncIterator[LeaderLease]:
    """The lease for a one-shot command: acquired (waiting up to ``wait``), released on exit.

    While held, a background task renews it every quarter of ``period``.
    """
    lease = make_lease(url, engine, period)
    await lease.acquire(wait)

    async def keep() -> None:
        while lease.held:
            await asyncio.sleep(period / 4)
            await lease.renew()

    task = asyncio.create_task(keep(), name="lease-renewal")
    try:
        yield lease
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await lease.release()
