"""``syncd check-config``: the effective configuration as TOML that loads back, or every problem."""

from __future__ import annotations

import argparse
import json
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
    """Render the configuration as TOML: sections, their sub-tables (``[infinityhr.fields]``), scalars
    and arrays (enough for the effective configuration, and it loads back the same)."""
    lines: list[str] = []

    def table(name: str, values: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if key not in nested:
                lines.append(_line(key, value))
        lines.append("")
        for key, value in nested.items():
            table(f"{name}.{key}", value)

    for section, values in data.items():
        table(section, values)
    return "\n".join(lines).rstrip() + "\n"


def _line(key: str, value: Any) -> str:
    if value is None:
        return f"# {key} is not set"
    if isinstance(value, bool):
        return f"{key} = {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"{key} = {value}"
    if isinstance(value, (list, tuple)):  # a TOML array (JSON's string escapes are TOML's)
        return f"{key} = [{', '.join(json.dumps(str(v), ensure_ascii=False) for v in value)}]"
    return f"{key} = {json.dumps(str(value), ensure_ascii=False)}"
