"""The ``syncd`` commands that messages tell an operator to run, spelled so that they run as printed.

The CLI records the configuration file this process was started with (:func:`use_config`); every
message that names a command builds it with :func:`command`, so a pasted ``syncd approve …`` reads
the same file (and database) from any working directory.
"""

from __future__ import annotations

import os
import shlex

_config: str | None = None


def use_config(path: str | os.PathLike[str] | None) -> None:
    """The configuration file in use (``--config`` or ``$SYNCD_CONFIG``), or None for none."""
    global _config
    _config = os.path.abspath(os.fspath(path)) if path else None


#: how an operator runs a command against this install, when that is not ``syncd`` itself: the systemd
#: units set it to ``syncd-admin`` (config/syncd-admin runs syncd as their user, with their
#: credentials and state directory, and knows the configuration file)
COMMAND_ENV = "SYNCD_COMMAND"


def command(*args: str) -> str:
    """``syncd --config PATH ARGS…`` (``--config`` only when a file is in use), shell-quoted; under
    ``$SYNCD_COMMAND`` (the systemd units) that command's words instead of ``syncd --config PATH``."""
    prefix = os.environ.get(COMMAND_ENV, "").split()
    words = [*(prefix or ["syncd", *(("--config", _config) if _config else ())]), *args]
    return " ".join(shlex.quote(w) for w in words)
