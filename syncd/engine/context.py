"""What a cycle runs with: the database, the HTTP session and the vendor clients.

:class:`SyncContext` owns them for as long as the caller keeps it open (one ``--run-once``, or the
daemon's lifetime).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from syncd.config import Settings
from syncd.db import engine as dbe
from syncd.db import identity, records
from syncd.db.models import LedgerEntry
from syncd.engine.apply import Applier
from syncd.engine.plan import ledger_digest
from syncd.engine.progress import NULL_PROGRESS, Progress
from syncd.engine.shared import LOAD_BATCH, shared_strings
from syncd.vendors import InfinityHRClient, WhosOffClient, WorkboxClient

Ledger = dict[tuple[str, str], dict[str, Any]]


class SyncContext:
    """Database, HTTP session and vendor clients for one or many cycles."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        http: aiohttp.ClientSession,
        database: identity.Opened | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        #: the staging database as this process opened it (a run checks it is still that one)
        self.database = database
        self.sessions: async_sessionmaker[AsyncSession] = dbe.session_factory(engine)
        self.http = http
        self.infinityhr = InfinityHRClient(http, settings.infinityhr)
        self.whosoff = WhosOffClient(http, settings.whosoff)
        self.workbox = WorkboxClient(http, settings.workbox)
        #: the leader lease's token while one is held (every journal write checks it)
        self.fencing_token: int | None = None
        #: live display of long steps (a terminal's progress bars); log lines carry the same figures
        self.progress: Progress = NULL_PROGRESS
        #: the run in progress, or the last one (what an interrupted command reports)
        self.last_report: Any = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, *, migrate: bool = True) -> AsyncIterator[SyncContext]:
        async with contextlib.AsyncExitStack() as stack:
            engine = dbe.create_engine(settings.database.url, echo=settings.database.echo)
            stack.push_async_callback(engine.dispose)
            database = None
            if migrate:
                await dbe.prepare(engine, auto_migrate=settings.database.auto_migrate)
                with dbe.translate_errors(engine):
                    database = await identity.remember(engine)
            limit = sum(s.max_concurrency for s in (settings.infinityhr, settings.whosoff, settings.workbox))
            http = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit + 4), raise_for_status=False)
            )
            ctx = cls(settings, engine, http, database)
            if migrate and settings.workbox.signature == "auto":
                await ctx.remember_signature()
            yield ctx

    async def remember_signature(self) -> None:
        """``workbox.signature = "auto"``: start from the variant found to work before, and keep the one
        the client finds (the staging database holds it, so it is found once, not every run)."""
        known = await records.vendor_fact(self.sessions, "workbox", "signature")
        if known in ("v1", "v2"):
            self.workbox.variant = known

        async def keep(variant: str) -> None:
            await records.remember_vendor_fact(self.sessions, "workbox", "signature", variant)

        self.workbox.on_variant = keep

    def applier(self) -> Applier:
        return Applier(
            self.sessions,
            self.workbox,
            concurrency=self.settings.workbox.max_concurrency,
            fencing_token=self.fencing_token,
            progress=self.progress,
        )

    async def ledger_digest(self) -> str:
        """Hash of the ledger as stored (a held plan may be approved only while it is unchanged)."""
        async with self.sessions() as db:
            rows = (
                await db.execute(sa.select(LedgerEntry.kind, LedgerEntry.external_key, LedgerEntry.body_hash))
            ).all()
        return ledger_digest((kind, key, hashed) for kind, key, hashed in rows)

    async def ledger_and_digest(self) -> tuple[Ledger, str]:
        """The ledger and its :meth:`ledger_digest`, from one read (a plan records the digest of the
        very ledger it was made from)."""
        cols = (LedgerEntry.kind, LedgerEntry.external_key, LedgerEntry.body, LedgerEntry.body_hash)
        ledger: Ledger = {}
        hashes: list[tuple[str, str, str]] = []
        # streamed in batches: the whole result (raw JSON, decoded rows) is never held beside the ledger
        stmt = sa.select(*cols).execution_options(yield_per=LOAD_BATCH)
        async with self.sessions() as db:
            result = await db.stream(stmt)
            async for batch in result.partitions():
                for kind, key, body, hashed in batch:
                    kind, key = sys.intern(kind), sys.intern(key)  # one copy, shared with the sources' ids
                    ledger[(kind, key)] = shared_strings(body)
                    hashes.append((kind, key, hashed))
        return ledger, ledger_digest(hashes)
