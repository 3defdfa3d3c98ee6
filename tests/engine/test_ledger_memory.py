"""The ledger in memory: one copy of what its bodies repeat (issue 18, peak RSS at 100k)."""

from __future__ import annotations

import datetime as dt

from syncd.db.models import LedgerEntry
from syncd.engine.context import SyncContext
from syncd.sandbox import SandboxOptions, run_sandbox
from tests.support.config import settings_for


async def test_ledger_bodies_share_their_keys_and_repeated_values(db_url: str) -> None:
    """Each ledger row's JSON was decoded on its own, so 100k bodies held 100k copies of each key and
    of the department, grade and position keys they repeat (~15 objects an entity)."""
    async with (
        run_sandbox(SandboxOptions(employees=5, seed=3, port=0)) as sb,
        SyncContext.open(settings_for(sb, db_url)) as ctx,
    ):
        now = dt.datetime.now(dt.UTC)
        async with ctx.sessions.begin() as db:
            for key in ("a", "b"):
                body = {"emailAddr": f"{key}@example.com", "deptExternalKey": "dept-0001"}
                db.add(LedgerEntry(kind="user", external_key=key, body=body, body_hash=key, pushed_at=now))
        ledger, _ = await ctx.ledger_and_digest()
    a, b = ledger[("user", "a")], ledger[("user", "b")]
    assert a == {"emailAddr": "a@example.com", "deptExternalKey": "dept-0001"}
    assert next(iter(a)) is next(iter(b))
    assert a["deptExternalKey"] is b["deptExternalKey"]
