"""A database that cannot be opened fails in one clear line and nothing after it (issue 17, item 9).

aiosqlite's worker thread answered a failed connect on the event loop after ``asyncio.run`` had
closed it: ``Exception in thread … RuntimeError: Event loop is closed`` after syncd's own one-line
error, about one run in five.  Under systemd (a database its user cannot read) the journal showed the
traceback after every restart.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from syncd.cli.common import run_async
from syncd.db.engine import create_engine, current_revision
from syncd.errors import DatabaseError


def test_a_database_that_cannot_be_opened_leaves_no_thread_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "syncd.db"
    db.mkdir()  # "unable to open database file", as for a file its user may not read
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))

    async def revision() -> int:
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        try:
            await current_revision(engine)
        finally:
            await engine.dispose()
        return 0

    for _ in range(15):
        with pytest.raises(DatabaseError, match="unable to open database file"):
            run_async(revision)
    for thread in threading.enumerate():  # the workers of the failed connections have ended
        if thread is not threading.current_thread() and "_connection_worker_thread" in thread.name:
            thread.join(5)
    assert failures == []
