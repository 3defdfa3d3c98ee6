"""syncd: directory sync daemon."""

import os as _os
import signal as _signal

__version__ = "0.1.0"

if _os.getpid() == 1:
    # PID 1 of a container: the kernel drops a signal that has no handler, so a `docker stop` while
    # syncd starts (imports, opening the database; before the daemon's own handlers) was ignored and
    # ended in SIGKILL (exit 137) after the grace period.  Until then SIGTERM is handled as Ctrl-C is.
    _signal.signal(_signal.SIGTERM, _signal.default_int_handler)
