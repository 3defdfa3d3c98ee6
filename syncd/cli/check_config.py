"""``syncd check-config``: the effective configuration as TOML that loads back, or every problem."""

from __future__ import annotations

import argparse
import sys

from syncd.config import load_settings
from syncd.config.checks import config_warnings, secret_sources
from syncd.config.render import render_toml
from syncd.errors import ConfigError
from syncd.states import ExitCode


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
