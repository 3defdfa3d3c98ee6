"""``syncd db backup PATH``: a consistent copy of the SQLite staging database (PostgreSQL: pg_dump)."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from syncd.db import engine as dbe
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from tests.support.config import COMMAND, LENIENT_DELETES, write_config
from tests.support.process import syncd_command as syncd


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def _config(tmp_path: Path, sb: Sandbox, db_url: str) -> str:
    """A command's config for ``sb`` (``write_config`` of tests/support), as a path string."""
    return str(write_config(tmp_path / "syncd.toml", sb, db_url, base=(COMMAND, LENIENT_DELETES)))


LEDGER = "SELECT kind, external_key, body_hash, body FROM ledger ORDER BY kind, external_key"


async def test_backup_of_a_synced_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "syncd.db"
    async with run_sandbox(SandboxOptions(employees=30, seed=4, port=0)) as sb:
        cfg = _config(tmp_path, sb, f"sqlite+aiosqlite:///{db}")
        code, out, err = await syncd("--config", cfg, "--run-once")
        assert code == 0, err

    copy = tmp_path / "backups" / "syncd-copy.db"
    copy.parent.mkdir()
    code, out, err = await syncd("--config", cfg, "db", "backup", str(copy))
    assert code == 0, err
    assert str(copy) in out
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    ledger = _rows(db, LEDGER)
    assert len(ledger) > 30 and _rows(copy, LEDGER) == ledger
    identity = "SELECT id FROM database_identity"
    assert _rows(copy, identity) == _rows(db, identity) != []
    assert _rows(copy, "PRAGMA integrity_check") == [("ok",)]

    # an existing PATH is not overwritten without --force
    before = copy.read_bytes()
    code, out, err = await syncd("--config", cfg, "db", "backup", str(copy))
    assert code == 2 and "--force" in err and "Traceback" not in err, (out, err)
    assert copy.read_bytes() == before
    code, out, err = await syncd("--config", cfg, "db", "backup", str(copy), "--force")
    assert code == 0, err
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600 and _rows(copy, LEDGER) == ledger


async def test_backup_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=5, seed=4, port=0)) as sb:
        cfg = _config(tmp_path, sb, f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    code, out, err = await syncd("--config", cfg, "db", "backup", str(tmp_path / "copy.db"))
    assert code == 2 and "none.db" in err and "Traceback" not in err, (out, err)
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "none.db").exists()


async def test_backup_on_postgresql_says_pg_dump_without_the_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://syncd:s3cret-pw@db.example.internal:5433/staging"
    async with run_sandbox(SandboxOptions(employees=5, seed=4, port=0)) as sb:
        cfg = _config(tmp_path, sb, url)
    code, out, err = await syncd("--config", cfg, "db", "backup", str(tmp_path / "staging.dump"))
    assert code == 2, (out, err)
    text = out + err
    assert "s3cret-pw" not in text and "Traceback" not in text
    assert (
        "pg_dump --host=db.example.internal --port=5433 --username=syncd --dbname=staging "
        f"--format=custom --file={tmp_path / 'staging.dump'}"
    ) in text, text
    assert not (tmp_path / "staging.dump").exists()


async def test_the_printed_pg_dump_command_backs_up_the_postgresql_database(
    postgres_url: str, tmp_path: Path
) -> None:
    """The PostgreSQL leg: the command ``db backup`` prints works as printed (when pg_dump is here)."""
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    engine = dbe.create_engine(postgres_url)
    try:
        await dbe.upgrade(engine)
    finally:
        await engine.dispose()
    async with run_sandbox(SandboxOptions(employees=5, seed=4, port=0)) as sb:
        cfg = _config(tmp_path, sb, postgres_url)
    dump = tmp_path / "staging.dump"
    code, out, err = await syncd("--config", cfg, "db", "backup", str(dump))
    assert code == 2 and "pg_dump" in err, (out, err)
    command = next(line.strip() for line in err.splitlines() if line.strip().startswith("pg_dump "))
    proc = await asyncio.create_subprocess_exec(*shlex.split(command), stderr=asyncio.subprocess.PIPE)
    _, perr = await proc.communicate()
    if proc.returncode and b"version mismatch" in perr:
        pytest.skip(f"pg_dump does not match the server: {perr.decode().strip()}")
    assert proc.returncode == 0, perr.decode()
    assert dump.stat().st_size > 0
