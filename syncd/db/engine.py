"""Engine and session helpers, and the Alembic entry points the CLI uses.

Whoever creates the engine owns it (and disposes of it); components accept it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from syncd.errors import DatabaseError, UsageError

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger(__name__)

#: the newest migration (tests/db/test_migrations.py checks that it is Alembic's head): a database
#: already at it is checked with one query, without importing Alembic or reading its scripts
SCHEMA_HEAD = "0006"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url``; for SQLite the parent directory is created and WAL is enabled."""
    parsed = make_url(url)
    # hide_parameters: bound values (payloads, e-mails) never appear in exception messages or logs
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            problem = sqlite_location_problem(url)
            if problem:
                raise DatabaseError(problem)
            _private_sqlite_file(Path(database))
        log.info("db.location", database=str(Path(database).absolute()) if database else database)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
        log.info("db.location", database=f"{parsed.host}:{parsed.port or 5432}/{parsed.database}")
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            _wal_mode(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def _wal_mode(cur: Any, patience: float = 30.0) -> None:
    """``PRAGMA journal_mode=WAL``, retried: switching a new database's journal mode needs an exclusive
    lock and SQLite answers "database is locked" at once (no busy wait) while another process is
    migrating it."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def sqlite_location_problem(url: str) -> str | None:
    """Why a SQLite database at ``url`` could not be created or written, or None (PostgreSQL: None)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    path = Path(database).absolute()
    existing = next(d for d in (path.parent, *path.parent.parents) if d.exists())
    if not existing.is_dir():
        return f"cannot create the database directory {path.parent}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "directory" if existing == path.parent else f"directory {path.parent} under"
        reason = "read-only file system" if _read_only_fs(existing) else "permission denied"
        return (
            f"cannot write the database {what} {existing} ({reason}): the staging database {path} needs "
            "it writable (set $STATE_DIRECTORY or database.url to a writable place)"
        )
    return None


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _private_sqlite_file(path: Path) -> None:
    """Create a missing state directory 0700 (missing parents too) and a missing database file 0600,
    whatever the umask: the database holds names, e-mails and phone numbers.  SQLite gives its -wal
    and -shm files the database file's mode; an existing directory or file is left as it is."""
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=0o700)
            directory.chmod(0o700)  # mkdir's mode is filtered by the umask
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            path.chmod(0o600)  # an empty file: SQLite makes it a new database on first use


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# ------------------------------------------------------------------------------------ migrations


def migrations_dir() -> Path:
    """The Alembic script directory, shipped in the wheel as ``syncd.migrations``."""
    return Path(str(resources.files("syncd.migrations")))


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["configure_logger"] = False
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


#: what Alembic takes besides a revision id: the ends of the history and relative steps (``-1``, ``+1``)
_SYMBOLIC = ("head", "heads", "base")


def known_revisions() -> str:
    """The revisions a command may name, for a message: ``0001…0003, head, base``."""
    from alembic.script import ScriptDirectory

    ids = sorted(s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions())
    span = f"{ids[0]}…{ids[-1]}" if len(ids) > 2 else ", ".join(ids)
    return f"{span}, head, base"


def check_revision(revision: str) -> None:
    """Refuse a revision the shipped migrations do not know, in one line (:class:`UsageError`)."""
    if revision in _SYMBOLIC or (revision.lstrip("+-").isdigit() and revision[:1] in "+-"):
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    try:
        found = script.get_revision(revision)
    except Exception as exc:  # alembic raises CommandError or a ResolutionError subclass
        raise UsageError(f"unknown revision {revision}; known: {known_revisions()}") from exc
    if found is None:
        raise UsageError(f"unknown revision {revision}; known: {known_revisions()}")


#: tables whose rows a downgrade to base destroys, with how an operator calls them
DATA_TABLES = (("ledger", "ledger rows"), ("operations", "journal entries"), ("sync_runs", "runs"))


async def data_counts(engine: AsyncEngine) -> list[tuple[str, int]]:
    """How many rows each table of :data:`DATA_TABLES` holds (a missing table counts 0)."""

    def count(sync_conn: sa.Connection) -> list[tuple[str, int]]:
        present = set(sa.inspect(sync_conn).get_table_names())
        return [
            (label, sync_conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one())
            if name in present
            else (label, 0)
            for name, label in DATA_TABLES
        ]

    with translate_errors(engine):
        async with engine.connect() as conn:
            result: list[tuple[str, int]] = await conn.run_sync(count)
            return result


@contextmanager
def translate_errors(engine: AsyncEngine) -> Iterator[None]:
    """Turn a driver or connection failure into :class:`DatabaseError` (one line, no parameters)."""
    try:
        yield
    except SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=True)
        orig = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"database {url}: {type(orig).__name__}: {_first_line(exc)}") from exc
    except OSError as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(f"database {url} unreachable: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


#: the PostgreSQL advisory lock migrations run under (per database; not the leader lease's key)
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"syncd:migrations").digest()[:8], "big", signed=True)


async def _run(engine: AsyncEngine, fn: Any, *args: Any) -> Any:
    """Run an Alembic command in one transaction that first takes the database's migration lock, so
    concurrent first starts migrate once: the others wait, then find the schema at head."""

    def runner(sync_conn: sa.Connection) -> Any:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        return fn(cfg, *args)

    with translate_errors(engine):
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # released when this transaction ends
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            elif conn.dialect.name == "sqlite":
                # the sqlite3 driver starts no transaction before DDL: take the write lock now
                # (waiting up to busy_timeout), so the version check and the DDL are one transaction
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            return await conn.run_sync(runner)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    check_revision(revision)
    before = await current_revision(engine)
    from alembic import command

    await _run(engine, command.upgrade, revision)
    after = await current_revision(engine)
    if after != before:
        log.info("db.upgraded", from_revision=before, to_revision=after)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    check_revision(revision)
    before = await current_revision(engine)
    from alembic import command

    await _run(engine, command.downgrade, revision)
    log.info("db.downgraded", from_revision=before, to_revision=await current_revision(engine))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def current(sync_conn: sa.Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    with translate_errors(engine):
        async with engine.connect() as conn:
            result: str | None = await conn.run_sync(current)
            return result


async def stored_revision(engine: AsyncEngine) -> str | None:
    """The revision ``alembic_version`` records, in one query (None: no schema, or not readable)."""
    with translate_errors(engine):
        async with engine.connect() as conn:
            try:
                row = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).first()
            except SQLAlchemyError:  # no such table yet
                return None
            return str(row[0]) if row else None


async def prepare(engine: AsyncEngine, *, auto_migrate: bool) -> None:
    """Bring the schema to head (or, with auto-migrate off, check that it is there); a database at
    :data:`SCHEMA_HEAD` costs one query."""
    if await stored_revision(engine) == SCHEMA_HEAD:
        return
    if auto_migrate:
        await upgrade(engine)
        return
    current = await current_revision(engine)
    head = await asyncio.to_thread(head_revision)
    if current != head:
        raise DatabaseError(
            f"database schema is at {current or 'nothing'}, this syncd needs {head}: "
            "run `syncd db upgrade` (database.auto_migrate is false)"
        )
