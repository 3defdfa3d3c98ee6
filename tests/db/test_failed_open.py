"""A database that cannot be opened fails in one clear line and nothing after it (issue 17, item 9).

aiosqlite's worker thread answered a failed connect on the event loop after ``asyncio.run`` had
closed it: ``Exception in thread … RuntimeError: Event loop is closed`` after syncd's own one-line
error, about one run in five.  Under systemd (a database its user cannot read) the journal showed the
traceback after every restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
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


def test_an_interrupt_outside_the_task_does_not_resume_it(tmp_path: Path) -> None:
    """SIGTERM handled as Ctrl-C (PID 1 in a container, before the daemon's handlers) landing while
    the loop waits (outside the command's task): the command must not go on running afterwards.  The
    workers' wait ran the loop again and resumed it; in CI a daemon stopped during start-up went on
    starting and was killed at docker's grace period (exit 137)."""
    resumed: list[bool] = []

    async def command() -> int:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}")
        try:
            async with engine.connect():  # an aiosqlite worker thread is alive
                await asyncio.to_thread(time.sleep, 0.5)  # the main thread waits in the selector
                resumed.append(True)
                await asyncio.sleep(5)
        finally:
            await engine.dispose()
        return 0

    old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            run_async(command)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, old)
    time.sleep(0.6)
    assert resumed == []
