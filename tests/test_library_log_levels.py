"""--debug never lets a library log bound SQL parameters (issue 13, hole 11a)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import aiosqlite
import pytest

from syncd.logging import configure_logging


@pytest.mark.parametrize("level", ["debug", "info", "warning"])
def test_aiosqlite_logger_stays_at_info_or_above(level: str) -> None:
    configure_logging(level, "json", stream=io.StringIO())
    assert logging.getLogger("aiosqlite").getEffectiveLevel() >= logging.INFO
    assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)


async def test_debug_logging_does_not_print_sql_parameters(tmp_path: Path) -> None:
    buf = io.StringIO()
    configure_logging("debug", "json", stream=buf)
    async with aiosqlite.connect(tmp_path / "t.db") as db:
        await db.execute("CREATE TABLE m (email TEXT)")
        await db.execute("INSERT INTO m VALUES (?)", ("kim.private@example.com",))
        await db.commit()
    assert "kim.private@example.com" not in buf.getvalue()
