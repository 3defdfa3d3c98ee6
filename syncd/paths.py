"""Which configuration file is in use and where the state lives: what every command needs before it
loads anything heavy (``syncd --help`` and ``syncd --version`` import no more than this)."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_ENV = "SYNCD_CONFIG"


def state_dir(config_file: Path | None = None) -> Path:
    """Where the staging database lives and relative SQLite paths point: ``$STATE_DIRECTORY``
    (systemd; the first entry if several), else the configuration file's directory, else the current
    directory (no configuration file).  Never the working directory when a file is in use, so a
    command run from anywhere opens the same database."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0]).absolute()
    if config_file is not None:
        return config_file.absolute().parent
    return Path.cwd()


def config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None
