"""``syncd runs`` and ``syncd quarantine``: what the staging database says, read with nothing else
(no vendor client, no engine, no vendor secret: issue 17, item 5; a start-up that costs what the
command uses: issue 18)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd import report as report_mod
from syncd.config import Settings
from syncd.db import engine as dbe
from syncd.db import history
from syncd.states import ExitCode


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The staging database at its schema's head, for reading."""
    engine = dbe.create_engine(settings.database.url, echo=settings.database.echo)
    try:
        await dbe.prepare(engine, auto_migrate=settings.database.auto_migrate)
        with dbe.translate_errors(engine):
            yield dbe.session_factory(engine)
    finally:
        await engine.dispose()


async def runs(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        rows = await history.recent_runs(sessions, args.limit)
        held = await history.held_plans(sessions)
    report_mod.print_runs(rows, held, report_mod.console())
    return ExitCode.OK


async def quarantine(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        rows = await history.quarantine(sessions)
    report_mod.print_quarantine(rows, report_mod.console())
    return ExitCode.OK
