"""Command line: argument parsing and exit codes.  No business logic lives here.

Exit codes: 0 success; 1 the sync ran but failed, or some operations failed; 2 usage or
configuration error; 3 held by a safety rule.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import shlex
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog

from syncd import __version__, commands
from syncd import report as report_mod
from syncd.config import Settings, config_path, load_settings
from syncd.config_checks import config_warnings, secret_sources
from syncd.db import history
from syncd.engine.approval import request_approval, resolve_plan_id
from syncd.engine.context import SyncContext
from syncd.engine.cycle import approve, run_cycle
from syncd.errors import ConfigError, Interrupted, LeaseHeldError, SyncdError, UsageError
from syncd.literal import literal
from syncd.logging import configure_logging, terminal_console
from syncd.service.daemon import run_daemon
from syncd.service.health import healthcheck as healthcheck_probe
from syncd.service.lease import LeaderLease, hold_lease
from syncd.states import ExitCode, RunResult

log = structlog.get_logger("syncd.cli")


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options accepted before or after the command (``syncd --config X db upgrade`` or
    ``syncd db upgrade --config X``)."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        "-c",
        metavar="PATH",
        default=default,
        help="TOML config file (default: $SYNCD_CONFIG; else environment only)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=default,
        help="override log.level",
    )
    parser.add_argument(
        "--log-format", choices=["auto", "json", "console"], default=default, help="override log.format"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Directory sync daemon: InfinityHR + WhosOff → NAVER Cloud WORKBOX.",
        epilog="Exit codes: 0 ok, 1 sync failed, 2 usage/config error, 3 held by a safety rule.",
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    parser.add_argument("--run-once", action="store_true", help="same as `syncd run --once`")
    parser.add_argument("--dry-run", action="store_true", help="with --run-once: stop after the plan")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, top=False)
        return p

    add("check-config", "print the effective configuration (secrets masked) or every problem in it")

    run = add("run", "run the daemon (scheduled sync, health/metrics); with --once: one cycle, then exit")
    run.add_argument("--once", action="store_true", help="one pull → apply cycle, then exit")
    run.add_argument("--dry-run", action="store_true", help="stop after the plan (nothing is sent)")

    plan = add("plan", "pull and show what a sync would change, without applying it")
    plan.add_argument("--json", action="store_true", help="one JSON object on stdout (logs on stderr)")
    plan.add_argument("--all", action="store_true", help="show every operation, not the first 200")

    approve = add(
        "approve",
        "approve a held plan: apply those of its operations that the current sources still want",
    )
    approve.add_argument("plan_id")
    approve.add_argument("--by", help="who approves (recorded with the plan; default: your login name)")

    runs = add("runs", "list recent runs")
    runs.add_argument("--limit", type=int, default=20)

    add("quarantine", "list source records rejected by validation, with the reason")

    check = add("healthcheck", "exit 0 if the running daemon's /readyz says ready, else 1")
    check.add_argument("--url", help="readiness URL (default: /readyz on server.listen)")

    demo = add("demo", "run the whole product against the bundled sandbox (SQLite; under a minute)")
    demo.add_argument("--employees", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--dir", metavar="DIR", help="keep the SQLite database here (default: a temp dir)")

    db = add("db", "staging database schema (Alembic migrations)")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="upgrade the schema (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = dbsub.add_parser("downgrade", help="downgrade the schema to REV ('base' removes it)")
    down.add_argument("revision")
    down.add_argument("--yes", action="store_true", help="confirm a downgrade to base (it drops every table)")
    current = dbsub.add_parser("current", help="print the schema's current revision")
    backup = dbsub.add_parser(
        "backup",
        help="write a consistent copy of the staging database to PATH (SQLite; PostgreSQL: use pg_dump)",
    )
    backup.add_argument("path", metavar="PATH")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    for p in (up, down, current, backup):
        _common(p, top=False)

    sandbox = add("sandbox", "serve the bundled InfinityHR/WhosOff/WORKBOX simulators")
    sandbox.add_argument(
        "sandbox_args", nargs=argparse.REMAINDER, help="the sandbox's own options and commands"
    )
    return parser


# -------------------------------------------------------------------------------------- commands


NO_CONFIG_HINT = "no config file given (use --config PATH or $SYNCD_CONFIG)"


def _settings(args: argparse.Namespace) -> Settings:
    try:
        settings = load_settings(args.config)
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


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for file, key, reason in exc.problems:
            print(f"{file}: {key}: {reason}" if key else f"{file}: {reason}", file=sys.stderr)  # noqa: T201
        print(f"syncd: {len(exc.problems)} configuration problem(s)", file=sys.stderr)  # noqa: T201
        return ExitCode.USAGE
    from syncd.db.engine import sqlite_location_problem

    problem = sqlite_location_problem(settings.database.url)
    if problem:
        print(f"database.url: {problem}", file=sys.stderr)  # noqa: T201
        print("syncd: 1 configuration problem(s)", file=sys.stderr)  # noqa: T201
        return ExitCode.USAGE
    for source in secret_sources(args.config):
        print(f"secret {source}", file=sys.stderr)  # noqa: T201
    for file, key, reason in config_warnings(settings, args.config):
        print(f"warning: {file}: {key}: {reason}" if key else f"warning: {file}: {reason}", file=sys.stderr)  # noqa: T201
    print(render_toml(settings.masked()))  # noqa: T201
    return ExitCode.OK


def render_toml(data: dict[str, dict[str, Any]]) -> str:
    """Render a two-level mapping as TOML (enough for the effective configuration)."""
    import json

    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} is not set")
            elif isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, (int, float)):
                lines.append(f"{key} = {value}")
            elif isinstance(value, (list, tuple)):  # a TOML array (JSON's string escapes are TOML's)
                lines.append(f"{key} = [{', '.join(json.dumps(str(v), ensure_ascii=False) for v in value)}]")
            else:
                lines.append(f"{key} = {json.dumps(str(value), ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


async def _db(args: argparse.Namespace, settings: Settings) -> int:
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
    config = f" --config {shlex.quote(str(args.config))}" if args.config else ""
    print(  # noqa: T201
        f"syncd: error: `db downgrade base` drops every table of the staging database ({counts}); "
        f"to do it: syncd{config} db downgrade base --yes",
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


async def _once(args: argparse.Namespace, settings: Settings, dry_run: bool) -> int:
    async with SyncContext.open(settings) as ctx, contextlib.AsyncExitStack() as stack:
        console = terminal_console()
        if console is not None:  # a live progress display on a terminal; log lines print above it
            ctx.progress = stack.enter_context(report_mod.TerminalProgress(console))
        async with _interruptible(ctx):
            if dry_run:  # sends nothing: no lease needed
                report = await run_cycle(ctx, trigger="once", dry_run=True)
            else:
                async with _lease(settings, ctx) as lease:
                    ctx.fencing_token = lease.token
                    report = await run_cycle(ctx, trigger="once")
    out = report_mod.console()
    if dry_run:
        report_mod.print_plan(report, out)
    report_mod.print_run(report, out)
    return report.exit_code


@contextlib.asynccontextmanager
async def _interruptible(ctx: SyncContext) -> AsyncIterator[None]:
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


def _lease(settings: Settings, ctx: SyncContext) -> AbstractAsyncContextManager[LeaderLease]:
    """The leader lease for a one-shot command (waits up to sync.lease_wait, then exit 1)."""
    s = settings.sync
    return hold_lease(settings.database.url, ctx.engine, period=s.lease_period, wait=s.lease_wait)


def cmd_run(args: argparse.Namespace) -> int:
    if not args.once:
        if args.dry_run:
            raise UsageError("--dry-run needs --once (the daemon always applies)")
        return _run_async(run_daemon, _settings(args))
    return _run_async(_once, args, _settings(args), args.dry_run)


async def _healthcheck(args: argparse.Namespace, settings: Settings | None) -> int:
    ok, line = await healthcheck_probe(settings, args.url)
    print(line, file=sys.stdout if ok else sys.stderr)
    return ExitCode.OK if ok else ExitCode.FAILED


def cmd_healthcheck(args: argparse.Namespace) -> int:
    # 0 or 1 only: container runtimes reserve other exit codes of a health check
    try:
        settings = None if args.url else load_settings(args.config)
    except ConfigError as exc:
        print(f"syncd: error: {exc}", file=sys.stderr)  # noqa: T201
        return ExitCode.FAILED
    return _run_async(_healthcheck, args, settings)


async def _plan(args: argparse.Namespace, settings: Settings) -> int:
    async with SyncContext.open(settings) as ctx, _interruptible(ctx):
        report = await run_cycle(ctx, trigger="plan", dry_run=True)
    if args.json:
        print(report_mod.plan_json(report))  # noqa: T201
    else:
        out = report_mod.console()
        report_mod.print_plan(report, out, show_ops=len(report.ops) if args.all else report_mod.MAX_OPS_SHOWN)
        if report.held:
            out.print(literal(report_mod.held_hint(report)), soft_wrap=True)
    if report.error and report.result not in (RunResult.DRY_RUN, RunResult.STALE):
        print(f"syncd: error: {report.error}", file=sys.stderr)  # noqa: T201
    return ExitCode.FAILED if report.result in (RunResult.FAILED, RunResult.STALE) else ExitCode.OK


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry and no $USER
        return f"uid {os.getuid()}"


async def _approve(args: argparse.Namespace, settings: Settings) -> int:
    s = settings.sync
    approver = args.by or _login_name()
    async with SyncContext.open(settings) as ctx, _interruptible(ctx):
        args.plan_id = await resolve_plan_id(ctx, args.plan_id)
        try:
            lease_cm = hold_lease(settings.database.url, ctx.engine, period=s.lease_period, wait=0)
            async with lease_cm as lease:
                ctx.fencing_token = lease.token
                report = await approve(ctx, args.plan_id, approver)
        except LeaseHeldError as busy:
            # a daemon (or another run) leads: it applies the approval at the start of its next cycle
            await request_approval(ctx, args.plan_id, approver)
            note = (
                f"approval of plan {args.plan_id} queued: the leader ({busy.holder or 'another process'}) "
                f"applies it within seconds; `{commands.command('runs')}` shows it queued, then the result"
            )
            print(note)  # noqa: T201
            return ExitCode.OK
    report_mod.print_run(report, report_mod.console())
    return report.exit_code


async def _runs(args: argparse.Namespace, settings: Settings) -> int:
    async with SyncContext.open(settings) as ctx:
        rows = await history.recent_runs(ctx.sessions, args.limit)
        held = await history.held_plans(ctx.sessions)
    report_mod.print_runs(rows, held, report_mod.console())
    return ExitCode.OK


async def _quarantine(args: argparse.Namespace, settings: Settings) -> int:
    async with SyncContext.open(settings) as ctx:
        rows = await history.quarantine(ctx.sessions)
    report_mod.print_quarantine(rows, report_mod.console())
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from syncd.demo import run_demo

    configure_logging("debug" if args.debug else (args.log_level or "warning"), args.log_format or "auto")
    directory = Path(args.dir) if args.dir else None
    return _run_async(lambda: run_demo(employees=args.employees, seed=args.seed, directory=directory))


def cmd_sandbox(args: argparse.Namespace) -> int:
    from syncd.sandbox.server import main as sandbox_main

    configure_logging("debug" if args.debug else (args.log_level or "info"), args.log_format or "auto")
    code: int = sandbox_main(list(args.sandbox_args))
    return code


def _with_settings(
    fn: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    """A command that loads the configuration (and logging), then runs ``fn`` on an event loop."""
    return lambda args: _run_async(fn, args, _settings(args))


def _run_async(fn: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> int:
    return asyncio.run(fn(*args))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check-config": cmd_check_config,
    "run": cmd_run,
    "plan": _with_settings(_plan),
    "approve": _with_settings(_approve),
    "runs": _with_settings(_runs),
    "quarantine": _with_settings(_quarantine),
    "healthcheck": cmd_healthcheck,
    "demo": cmd_demo,
    "db": _with_settings(_db),
    "sandbox": cmd_sandbox,
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
        if args.dry_run:
            parser.error("--dry-run needs --run-once")
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
