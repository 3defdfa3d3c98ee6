"""Commands the docs tell an operator to run do what the docs say (issue 14, item 10)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _reliability_commands() -> list[list[str]]:
    text = (ROOT / "docs" / "reliability.md").read_text()
    found = re.findall(r"python -m bench\.reliability[^`\n]*", text)
    return [shlex.split(c)[3:] for c in found]


def test_the_reliability_headline_neither_restarts_postgres_nor_overwrites_its_document() -> None:
    """The headline command restarted the host's PostgreSQL and wrote over docs/reliability.md."""
    headline = _reliability_commands()[0]
    assert "--pg-restart" not in headline
    out = headline[headline.index("--out") + 1]
    assert not (ROOT / out).resolve().is_relative_to(ROOT / "docs"), out


def test_every_documented_reliability_command_parses_and_the_restart_is_opt_in() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "bench.reliability", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "--pg-restart" in help_text
    options = set(re.findall(r"--[a-z][a-z-]+", help_text))
    for argv in _reliability_commands():
        used = {a for a in argv if a.startswith("--")}
        assert used <= options, f"docs/reliability.md uses unknown options {used - options}: {argv}"
    # the restart is opt-in, and says why
    assert re.search(r"--pg-restart\s+also restart the host's PostgreSQL", help_text), help_text
