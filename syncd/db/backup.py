"""``syncd db backup PATH``: a consistent copy of the staging database.

SQLite: SQLite's online backup API (:meth:`sqlite3.Connection.backup`) copies the database page by
page under its own locks, so a copy taken while syncd runs is a consistent snapshot (a plain ``cp`` of
a WAL database is not).  The copy is written to a temporary file (mode 0600) beside ``PATH``, made
self-contained (rollback journal, no ``-wal`` file), and only then linked into place, so ``PATH`` is
either the complete copy or untouched.  PostgreSQL: ``pg_dump`` does this; :func:`pg_dump_command`
says how for the configured URL.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import tempfile
import urllib.parse
from dataclasses import dataclass

from sqlalchemy.engine import URL

from syncd.db.identity import sqlite_path
from syncd.errors import UsageError


@dataclass(frozen=True)
class Copied:
    source: str
    path: str
    ledger_rows: int
    identity: str | None


def pg_dump_command(url: URL, path: str) -> str:
    """The ``pg_dump`` command line that backs up ``url``'s database to ``path`` (no password: it
    comes from ``PGPASSWORD`` or ``~/.pgpass``)."""
    args = ["pg_dump"]
    if url.host:
        args.append(f"--host={url.host}")
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--username={url.username}")
    args += [f"--dbname={url.database or 'postgres'}", "--format=custom", f"--file={path}"]
    return shlex.join(args)


def sqlite_backup(url: URL, path: str, *, force: bool = False) -> Copied:
    """Copy the SQLite database of ``url`` to ``path`` (which must not exist unless ``force``)."""
    source = sqlite_path(url)
    if source is None:
        raise UsageError(f"{url.render_as_string(hide_password=True)} is not a SQLite file: nothing to copy")
    dest = os.path.abspath(path)
    if not os.path.isfile(source):
        raise UsageError(f"no staging database at {source}: nothing to back up")
    if os.path.exists(dest):
        if not force:
            raise UsageError(f"{dest} exists: pass --force to overwrite it")
        if os.path.samefile(dest, source):
            raise UsageError(f"{dest} is the staging database itself")
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise UsageError(f"{parent} is not a directory: create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".tmp", dir=parent)  # 0600
    os.close(fd)
    try:
        copied = _copy(source, tmp)
        _put_in_place(tmp, dest, force=force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return Copied(source, dest, *copied)


def _copy(source: str, tmp: str) -> tuple[int, str | None]:
    """Online backup of ``source`` into ``tmp``; the copy's ledger rows and identity."""
    uri = f"file:{urllib.parse.quote(source)}?mode=rw"  # mode=rw: never creates a database
    src = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            check = dst.execute("PRAGMA quick_check").fetchone()
            if check != ("ok",):
                raise UsageError(f"the copy of {source} fails its integrity check: {check}")
            return _ledger_rows(dst), _identity(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _ledger_rows(conn: sqlite3.Connection) -> int:
    try:
        return int(conn.execute("SELECT count(*) FROM ledger").fetchone()[0])
    except sqlite3.OperationalError:  # an empty file or a schema never created
        return 0


def _identity(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT id FROM database_identity ORDER BY created_at, id").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


def _put_in_place(tmp: str, dest: str, *, force: bool) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    if force:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)  # fails if dest appeared meanwhile: never overwritten without --force
    except FileExistsError:
        raise UsageError(f"{dest} exists: pass --force to overwrite it") from None
