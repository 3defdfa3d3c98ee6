"""``syncd check-config``: the effective configuration as TOML that loads back, or every problem."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from syncd.config import load_settings
from syncd.config.checks import config_warnings, secret_sources
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
