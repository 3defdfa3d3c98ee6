"""What every command shares: loading the configuration (and logging), running on an event loop,
Ctrl-C as one line and exit 130."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from syncd import commands
from syncd.config import Settings, config_path, load_settings
from syncd.errors import ConfigError, Interrupted
from syncd.logging import configure_logging

if TYPE_CHECKING:  # a type only: light commands do not import the engine
    from syncd.engine.context import SyncContext

NO_CONFIG_HINT = "no config file given (use --config PATH or $SYNCD_CONFIG)"


def load(args: argparse.Namespace, *, vendor_secrets: bool = True) -> Settings:
    try:
        settings = load_settings(args.config, vendor_secrets=vendor_secrets)
    except ConfigError as exc:
        if config_path(args.config) is None:  # say first what is most likely wrong
            raise ConfigError([("", "", NO_CONFIG_HINT), *exc.problems]) from None
        raise
    configure_logging(
        "debug" if args.debug else (args.log_level or settings.log.level),
        args.log_format or settings.log.format,
        secrets=settings.secret_values(),
    )
    return settings


def with_settings(
    fn: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
    *,
    vendor_secrets: bool = True,
) -> Callable[[argparse.Namespace], int]:
    """A command that loads the configuration (and logging), then runs ``fn`` on an event loop;
    ``vendor_secrets=False`` for a command that reads only the staging database."""
    return lambda args: run_async(fn, args, load(args, vendor_secrets=vendor_secrets))


def run_async(fn: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> int:
    with asyncio.Runner() as runner:
        try:
            result = runner.run(fn(*args))
        except (KeyboardInterrupt, SystemExit):
            # SIGTERM as Ctrl-C may land outside the command's task, which is then still pending:
            # running the loop again would resume it (a daemon went on starting, then drained past
            # docker's grace period); the runner cancels it on close, and nothing else runs
            raise
        except BaseException:
            runner.run(_sqlite_workers_done())
            raise
        runner.run(_sqlite_workers_done())
        return result


async def _sqlite_workers_done(patience: float = 2.0) -> None:
    """Let aiosqlite's worker threads end while the loop still runs.  A connection that failed to
    open is stopped without being awaited, and its worker then answers on the loop: after the loop
    closed, that printed a thread traceback (``RuntimeError: Event loop is closed``) below syncd's
    one-line error."""
    workers = [t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")]
    if workers:
        deadline = time.monotonic() + patience

        def join() -> None:
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))

        await asyncio.to_thread(join)


@contextlib.asynccontextmanager
async def interruptible(ctx: SyncContext) -> AsyncIterator[None]:
    """Ctrl-C (the event loop cancels the command) ends in :class:`Interrupted`: one line saying what
    the run left and the command that finishes it, and exit 130."""
    try:
        yield
    except asyncio.CancelledError:
        report = ctx.last_report
        raise Interrupted(
            report.error
            if report is not None and report.error
            else f"interrupted before the run started; `{commands.command('--run-once')}` runs it"
        ) from None
