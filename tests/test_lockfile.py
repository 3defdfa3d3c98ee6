"""requirements.lock (what the image installs, with hashes) follows pyproject.toml's runtime
dependencies: a dependency added to one and not the other would make the image differ from the wheel."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_runtime_dependency_is_pinned_with_hashes_in_the_lock() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9._-]+)==\S+ \\$", lock, re.MULTILINE)}
    assert {_name(d) for d in deps} <= pinned, "regenerate requirements.lock (deploy/README.md)"
    assert all("--hash=sha256:" in block for block in lock.split("==")[1:])
    assert "psutil" not in {_name(d) for d in deps}  # the benchmarks' and tests' only
