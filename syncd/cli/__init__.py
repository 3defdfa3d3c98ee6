"""Command line: argument parsing and exit codes.  No business logic lives here.

Exit codes: 0 success; 1 the sync ran but failed, or some operations failed; 2 usage or
configuration error; 3 held by a safety rule; 130 interrupted (Ctrl-C).  One module per group of
commands: :mod:`.parser` (arguments), :mod:`.common`, :mod:`.check_config`, :mod:`.db`,
:mod:`.sync`, :mod:`.tools`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import NamedTuple, NoReturn

from syncd import _sigterm_as_ctrl_c, commands
from syncd.cli.parser import build_parser
from syncd.errors import Interrupted, SyncdError
from syncd.paths import config_path
from syncd.states import ExitCode


class Command(NamedTuple):
    """Where a command's function is (``syncd.cli.<module>``), imported only when it runs: ``--help``,
    ``--version`` and a light command do not pay for the engine, SQLAlchemy, aiohttp and rich."""

    module: str
    function: str
    #: the function takes (args, settings): the configuration is loaded for it
    settings: bool = False
    #: with ``settings``: the vendor secrets are required (else a command of the database only)
    vendor_secrets: bool = True

    def __call__(self, args: argparse.Namespace) -> int:
        fn = getattr(importlib.import_module(f"syncd.cli.{self.module}"), self.function)
        _sigterm_as_ctrl_c()  # imported: from here a SIGTERM (PID 1) is Ctrl-C, and ends in one line
        if not self.settings:
            return int(fn(args))
        from syncd.cli.common import with_settings

        return with_settings(fn, vendor_secrets=self.vendor_secrets)(args)


COMMANDS: dict[str, Command] = {
    "check-config": Command("check_config", "cmd_check_config"),
    "run": Command("sync", "cmd_run"),
    "plan": Command("sync", "plan", settings=True),
    "approve": Command("sync", "approve_plan", settings=True),
    "reconcile": Command("sync", "reconcile", settings=True),
    "runs": Command("history", "runs", settings=True, vendor_secrets=False),
    "quarantine": Command("history", "quarantine", settings=True, vendor_secrets=False),
    "doctor": Command("doctor", "cmd_doctor"),
    "keys": Command("keys", "cmd_keys"),
    "healthcheck": Command("sync", "cmd_healthcheck"),
    "demo": Command("tools", "cmd_demo"),
    "db": Command("db", "command", settings=True, vendor_secrets=False),
    "sandbox": Command("tools", "cmd_sandbox"),
}


#: the top-level options that take a value (``syncd --config X sandbox …``)


_VALUED = ("--config", "-c", "--log-level", "--log-format")


def _sandbox_at(argv: Sequence[str]) -> int | None:
    """Where ``sandbox`` is the command in ``argv`` (after top-level options only), else ``None``."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "sandbox":
            return i
        if not word.startswith("-"):
            return None
        i += 2 if word in _VALUED else 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # the sandbox has its own options and help: everything after `sandbox` is passed to it as it is
    at = _sandbox_at(argv)
    args = parser.parse_args(argv if at is None else argv[: at + 1])
    if at is not None:
        args.sandbox_args = argv[at + 1 :]
    commands.use_config(config_path(getattr(args, "config", None)))  # messages name it
    if args.run_once:
        if args.command not in (None, "run"):
            parser.error("--run-once is a command of its own; drop the other command")
        args.command, args.once = "run", True
        args.dry_run = args.dry_run or False
    if args.command is None:  # bare `syncd`: the daemon
        if args.dry_run or args.full_read:
            parser.error(("--dry-run" if args.dry_run else "--full-read") + " needs --run-once")
        args.command, args.once, args.dry_run = "run", False, False
    try:
        return COMMANDS[args.command](args)
    except Interrupted as exc:  # one line, no traceback: what is left and how to finish
        print(f"syncd: {exc}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except SyncdError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"syncd: error: {exc}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an unexpected environment: one line, the traceback on --debug
        if args.debug:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        if type(exc).__module__.split(".")[0] in ("asyncpg", "sqlite3", "aiosqlite", "sqlalchemy"):
            message = f"syncd: error: the staging database failed: {type(exc).__name__}: {first}"
        else:
            message = f"syncd: unexpected error: {type(exc).__name__}: {first} (--debug shows the traceback)"
        print(message, file=sys.stderr)  # noqa: T201
        return ExitCode.FAILED


def entry() -> NoReturn:
    """The ``syncd`` console script and ``python -m syncd``: :func:`main`, then the process ends without
    tearing the interpreter down object by object, which frees everything a big cycle left (a quarter
    of a second at 300 employees, more at 100k) only for the process to lose it anyway.  What a normal
    exit does that matters is done first: other threads joined, ``atexit`` handlers run (logging's
    among them), both streams flushed."""
    try:
        code: int | str | None = main()
    except SystemExit as exc:  # argparse: --help, --version, a usage error
        code = exc.code
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    if isinstance(code, str):  # SystemExit("message"): printed, exit 1, as Python does
        print(code, file=sys.stderr)  # noqa: T201
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said anyway
            stream.flush()
    os._exit(code if isinstance(code, int) else 0)
