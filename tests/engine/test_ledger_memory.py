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


async def test_staged_snapshots_and_pulled_payloads_share_what_records_repeat(db_url: str) -> None:
    """The same for the snapshots an incremental cycle reads back from staging, and for the payloads
    of a pull: one copy of each key and of the department, title and status values."""
    from syncd.engine.pull import pull_infinityhr_employees
    from syncd.engine.stage import load_snapshot, stage

    async with (
        run_sandbox(SandboxOptions(employees=40, seed=3, port=0)) as sb,
        SyncContext.open(settings_for(sb, db_url)) as ctx,
    ):
        pulled = await pull_infinityhr_employees(ctx.infinityhr)
        await stage(ctx.sessions, {("infinityhr", "employee"): pulled}, run_id=1, max_shrink=0.1)
        snapshot = await load_snapshot(ctx.sessions, "infinityhr", "employee")
    for records in (pulled.records, snapshot):
        for field in ("department_code", "employment_status"):
            by_value: dict[str, list[dict[str, object]]] = {}
            for payload in records.values():
                by_value.setdefault(str(payload[field]), []).append(payload)
            a, b = next(group for group in by_value.values() if len(group) > 1)[:2]
            assert a[field] is b[field], field
            assert next(iter(a)) is next(iter(b))


async def test_an_unchanged_member_is_the_ledgers_body_not_a_second_copy(db_url: str) -> None:
    """The desired directory of a no-op cycle holds the ledger's own body for every unchanged member
    (at 100k a second equal copy of each was ~28 MB at the merge's peak)."""
    from syncd.engine.cycle import rules_from, run_cycle
    from syncd.engine.merge import Sources, merge
    from syncd.engine.stage import load_snapshot

    async with (
        run_sandbox(SandboxOptions(employees=30, seed=3, port=0)) as sb,
        SyncContext.open(settings_for(sb, db_url)) as ctx,
    ):
        assert (await run_cycle(ctx)).exit_code == 0
        ledger, _ = await ctx.ledger_and_digest()
        snapshot = {k: await load_snapshot(ctx.sessions, "infinityhr", k) for k in ("employee", "department")}
        wo = {k: await load_snapshot(ctx.sessions, "whosoff", k) for k in ("user", "department")}
        sources = Sources(snapshot["employee"], snapshot["department"], wo["user"], wo["department"])
        users = merge(sources, ledger, rules_from(ctx.settings)).objects["user"]
    assert users and all(body is ledger[("user", key)] for key, body in users.items())
