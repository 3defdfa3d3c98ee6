"""``syncd db …``: the staging database's schema (Alembic) and its backup."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from syncd import commands
from syncd.config import Settings
from syncd.states import ExitCode


async def command(args: argparse.Namespace, settings: Settings) -> int:
    from syncd.db import engine as dbe

    if args.db_command == "backup":
        return await _db_backup(args, settings)
    engine = dbe.create_engine(settings.database.url)
    try:
        if args.db_command == "upgrade":
            await dbe.upgrade(engine, args.revision)
            print(f"database at {await dbe.current_revision(engine)}")  # noqa: T201
        elif args.db_command == "downgrade":
            dbe.check_revision(args.revision)
            if args.revision == "base" and not args.yes:
                return await _refuse_downgrade(args, engine)
            await dbe.downgrade(engine, args.revision)
            print(f"database at {await dbe.current_revision(engine) or 'base (empty)'}")  # noqa: T201
        else:
            current = await dbe.current_revision(engine)
            head = dbe.head_revision()
            state = "up to date" if current == head else f"head is {head}"
            print(f"{current or 'base (empty)'} ({state})")  # noqa: T201
    finally:
        await engine.dispose()
    return ExitCode.OK


async def _refuse_downgrade(args: argparse.Namespace, engine: Any) -> int:
    """A downgrade to base without ``--yes``: what it would drop, and the command that does it."""
    from syncd.db import engine as dbe

    counts = ", ".join(f"{n} {label}" for label, n in await dbe.data_counts(engine))
    print(  # noqa: T201
        f"syncd: error: `db downgrade base` drops every table of the staging database ({counts}); "
        f"to do it: `{commands.command('db', 'downgrade', 'base', '--yes')}`",
        file=sys.stderr,
    )
    return ExitCode.USAGE


async def _db_backup(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.engine import make_url

    from syncd.db import backup

    url = make_url(settings.database.url)
    if url.get_backend_name() == "postgresql":
        print(  # noqa: T201
            "syncd: the staging database is PostgreSQL: back it up with pg_dump (the password comes "
            "from PGPASSWORD or ~/.pgpass; restore with pg_restore):\n"
            f"  {backup.pg_dump_command(url, args.path)}",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    copied = await asyncio.to_thread(backup.sqlite_backup, url, args.path, force=args.force)
    print(  # noqa: T201
        f"backed up {copied.source} to {copied.path}: {copied.ledger_rows} ledger entries, "
        f"database {copied.identity or 'without identity'}"
    )
    return ExitCode.OK
