"""syncd: directory sync daemon."""

import os as _os
import signal as _signal

__version__ = "0.1.0"


def _stopped_while_importing(signum: int, _frame: object) -> None:
    _os.write(2, b"syncd: stopped (SIGTERM) while starting; nothing had run\n")
    raise SystemExit(128 + signum)


def _sigterm_as_ctrl_c() -> None:
    """Once the command's module is imported (syncd.cli.Command): SIGTERM is handled as Ctrl-C is,
    until the daemon installs its own handlers."""
    if _signal.getsignal(_signal.SIGTERM) is _stopped_while_importing:
        _signal.signal(_signal.SIGTERM, _signal.default_int_handler)


if _os.getpid() == 1:
    # PID 1 of a container: the kernel drops a signal that has no handler, so a `docker stop` while
    # syncd starts (imports, opening the database; before the daemon's own handlers) was ignored and
    # ended in SIGKILL (exit 137) after the grace period.  While importing, SIGTERM exits at once in
    # one line (as Ctrl-C it printed an import traceback); then it is handled as Ctrl-C is.
    _signal.signal(_signal.SIGTERM, _stopped_while_importing)
