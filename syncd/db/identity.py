"""Which staging database a process opened, and whether it still has that one.

The ledger is the only record of what WORKBOX holds, so a staging database that disappears under a
running process must not pass unnoticed: a SQLite file deleted while syncd runs keeps taking the
process's writes (into the unlinked inode), the run would report success, and the next run would
start from an empty ledger.

:func:`remember` reads the database's identity row (``database_identity``, written when the schema is
created) and, for a SQLite file, the file's ``(st_dev, st_ino)``; :func:`check` (called before a run
ends) raises :class:`~syncd.errors.DatabaseError` when the path no longer names that file or the
database holds another identity.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from syncd.db.models import DatabaseIdentity, utcnow
from syncd.errors import DatabaseError

RESTORE = (
    "stop syncd and restore the staging database from a backup (`syncd db backup`; README "
    '"Staging database") before the next run, which would otherwise start from a ledger that '
    "does not know what WORKBOX holds"
)


@dataclass(frozen=True)
class Opened:
    """The staging database as a process found it when it opened it."""

    #: the database URL, password hidden
    url: str
    #: the ``database_identity`` row's id
    identity: str
    #: a SQLite database's file (absolute), else None
    path: str | None = None
    #: that file's ``(st_dev, st_ino)``
    file_id: tuple[int, int] | None = None


def sqlite_path(url: URL) -> str | None:
    """The file of a SQLite URL (absolute), None for an in-memory database or another backend."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return os.path.abspath(url.database)


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


async def _identity(engine: AsyncEngine, *, create: bool) -> str | None:
    async with engine.begin() as conn:
        found = (
            await conn.execute(
                sa.select(DatabaseIdentity.id).order_by(DatabaseIdentity.created_at, DatabaseIdentity.id)
            )
        ).first()
        if found is not None:
            return str(found[0])
        if not create:
            return None
        new = str(uuid.uuid4())  # the row a migration writes is missing: this database gets one now
        await conn.execute(sa.insert(DatabaseIdentity).values(id=new, created_at=utcnow()))
        return new


async def remember(engine: AsyncEngine) -> Opened:
    """The identity of the database ``engine`` opens (its schema is in place)."""
    path = sqlite_path(engine.url)
    file_id = await asyncio.to_thread(_file_id, path) if path else None
    identity = await _identity(engine, create=True)
    assert identity is not None
    return Opened(engine.url.render_as_string(hide_password=True), identity, path, file_id)


async def check(engine: AsyncEngine, opened: Opened | None) -> None:
    """Raise :class:`DatabaseError` if ``engine``'s database is no longer the one ``opened`` names
    (None: the process opened it without preparing the schema, and remembered nothing)."""
    if opened is None:
        return
    if opened.path is not None:
        now = await asyncio.to_thread(_file_id, opened.path)
        if now is None:
            raise DatabaseError(
                f"the staging database {opened.path} was deleted while syncd had it open: this run's "
                f"journal, ledger changes and run record went into the deleted file and are lost; {RESTORE}"
            )
        if now != opened.file_id:
            raise DatabaseError(
                f"the staging database {opened.path} was replaced while syncd had it open (the path "
                f"names another file now): this run's journal, ledger changes and run record went into "
                f"the file it replaced, not into {opened.path}; {RESTORE}"
            )
    identity = await _identity(engine, create=False)
    if identity != opened.identity:
        raise DatabaseError(
            f"the staging database {opened.url} is not the one this process opened (identity "
            f"{opened.identity} then, {identity or 'none'} now): it was recreated or swapped while "
            f"syncd ran; {RESTORE}"
        )
