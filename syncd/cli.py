"""Command line: argument parsing and exit codes.  No business logic lives here.

Exit codes: 0 success; 1 the sync ran but failed, or some operations failed; 2 usage or
configuration error; 3 held by a safety rule.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import structlog

from syncd import __version__
from syncd.config import Settings, load_settings
from syncd.errors import ConfigError, SyncdError
from syncd.logging import configure_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HELD = 0, 1, 2, 3

log = structlog.get_logger("syncd.cli")


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options accepted before or after the command (``syncd --config X db upgrade`` or
    ``syncd db upgrade --config X``)."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--config", "-c", metavar="PATH", default=default,
                        help="TOML config file (default: $SYNCD_CONFIG; else environment only)")
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="show tracebacks and debug logs")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=default,
                        help="override log.level")
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default=default,
                        help="override log.format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Directory sync daemon: InfinityHR + WhosOff → NAVER Cloud WORKBOX.",
        epilog="Exit codes: 0 ok, 1 sync failed, 2 usage/config error, 3 held by a safety rule.",
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, top=False)
        return p

    add("check-config", "print the effective configuration (secrets masked) or every problem in it")

    db = add("db", "staging database schema (Alembic migrations)")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="upgrade the schema (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = dbsub.add_parser("downgrade", help="downgrade the schema to REV ('base' removes it)")
    down.add_argument("revision")
    current = dbsub.add_parser("current", help="print the schema's current revision")
    for p in (up, down, current):
        _common(p, top=False)

    sandbox = add("sandbox", "serve the bundled InfinityHR/WhosOff/WORKBOX simulators")
    sandbox.add_argument("sandbox_args", nargs=argparse.REMAINDER,
                         help="options of the sandbox (see `syncd sandbox --help`)")
    return parser


# -------------------------------------------------------------------------------------- commands


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
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
        return EXIT_USAGE
    print(render_toml(settings.masked()))  # noqa: T201
    return EXIT_OK


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
            else:
                lines.append(f"{key} = {json.dumps(str(value), ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


async def _db(args: argparse.Namespace, settings: Settings) -> int:
    from syncd.db import engine as dbe

    engine = dbe.create_engine(settings.database.url)
    try:
        if args.db_command == "upgrade":
            await dbe.upgrade(engine, args.revision)
            print(f"database at {await dbe.current_revision(engine)}")  # noqa: T201
        elif args.db_command == "downgrade":
            await dbe.downgrade(engine, args.revision)
            print(f"database at {await dbe.current_revision(engine) or 'base (empty)'}")  # noqa: T201
        else:
            current = await dbe.current_revision(engine)
            head = dbe.head_revision()
            state = "up to date" if current == head else f"head is {head}"
            print(f"{current or 'base (empty)'} ({state})")  # noqa: T201
    finally:
        await engine.dispose()
    return EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    return _run_async(_db, args, _settings(args))


def cmd_sandbox(args: argparse.Namespace) -> int:
    from syncd.sandbox.server import main as sandbox_main

    configure_logging("debug" if args.debug else (args.log_level or "info"), args.log_format or "auto")
    code: int = sandbox_main(list(args.sandbox_args))
    return code


def _run_async(fn: Callable[..., Coroutine[Any, Any, int]], *args: Any) -> int:
    return asyncio.run(fn(*args))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check-config": cmd_check_config,
    "db": cmd_db,
    "sandbox": cmd_sandbox,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except SyncdError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"syncd: error: {exc}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
