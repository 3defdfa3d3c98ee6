"""Migrations on SQLite and PostgreSQL: upgrade, downgrade, upgrade again; models == migrations."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from syncd.db import engine as dbe
from syncd.db.models import Base

EXPECTED_TABLES = {
    "src_infinityhr_employee",
    "src_infinityhr_department",
    "src_whosoff_user",
    "src_whosoff_department",
    "source_state",
    "quarantine",
    "ledger",
    "sync_runs",
    "plans",
    "operations",
    "leases",
    "database_identity",
    "vendor_facts",
    "workbox_collisions",
}


async def _tables(engine: sa.ext.asyncio.AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    return names - {"alembic_version"}


async def _diff(engine: sa.ext.asyncio.AsyncEngine) -> list[object]:
    def compare(conn: sa.Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = dbe.create_engine(db_url)
    try:
        await dbe.upgrade(engine)
        assert await dbe.current_revision(engine) == dbe.head_revision()
        assert await _tables(engine) == EXPECTED_TABLES

        await dbe.downgrade(engine, "base")
        assert await dbe.current_revision(engine) is None
        assert await _tables(engine) == set()

        await dbe.upgrade(engine)
        assert await _tables(engine) == EXPECTED_TABLES
        # upgrading an up-to-date schema is a no-op
        await dbe.upgrade(engine)
        assert await dbe.current_revision(engine) == dbe.head_revision()
    finally:
        await engine.dispose()


async def test_autogenerate_finds_no_difference(db_url: str) -> None:
    engine = dbe.create_engine(db_url)
    try:
        await dbe.upgrade(engine)
        assert await _diff(engine) == []
    finally:
        await engine.dispose()


async def test_autogenerate_would_notice_a_difference(db_url: str) -> None:
    """The comparison above can fail: an un-migrated model change is reported."""
    engine = dbe.create_engine(db_url)
    try:
        await dbe.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP INDEX ix_plans_status"))
        diff = await _diff(engine)
        assert any("ix_plans_status" in repr(d) for d in diff), diff
    finally:
        await engine.dispose()


async def test_prepare_without_auto_migrate_refuses_an_old_schema(db_url: str) -> None:
    import pytest

    from syncd.errors import DatabaseError

    engine = dbe.create_engine(db_url)
    try:
        with pytest.raises(DatabaseError, match="syncd db upgrade"):
            await dbe.prepare(engine, auto_migrate=False)
        await dbe.prepare(engine, auto_migrate=True)
        await dbe.prepare(engine, auto_migrate=False)
    finally:
        await engine.dispose()


def test_no_column_can_hold_ssn_or_personal_email() -> None:
    columns = {c.name.lower() for t in Base.metadata.tables.values() for c in t.columns}
    forbidden = ("ssn", "personal", "password", "secret", "access_token", "session_id", "signature")
    assert not {c for c in columns if any(word in c for word in forbidden)}


def test_schema_head_is_alembics_head() -> None:
    assert dbe.head_revision() == dbe.SCHEMA_HEAD, "a new migration: set SCHEMA_HEAD in syncd/db/engine.py"


async def test_a_current_schema_is_checked_with_one_query(db_url: str) -> None:
    """Issue 18: every command and every start ran Alembic's upgrade (its scripts read, a transaction
    taken) even when the schema was current."""
    engine = dbe.create_engine(db_url)
    statements: list[str] = []
    try:
        await dbe.upgrade(engine)
        sa.event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        await dbe.prepare(engine, auto_migrate=True)
        assert statements == ["SELECT version_num FROM alembic_version"], statements
        await dbe.prepare(engine, auto_migrate=False)
        assert len(statements) == 2
    finally:
        await engine.dispose()
