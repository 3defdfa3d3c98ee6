"""The sandbox in a process of its own, with the generator options the bench needs.

``python -m syncd.sandbox.server`` has no flag for ``whosoff_overlap``, so the bench starts the same
``serve()`` with a :class:`SandboxOptions` it builds here (``--whosoff-overlap 0.6`` gives the issue's
~1.2 WhosOff users per 2 employees).  Run: ``python -m bench.sandbox_proc --employees N --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import sys

from syncd.sandbox import SandboxOptions
from syncd.sandbox.server import serve


def loop_of(wanted: str | None = None) -> str:
    """The event loop the sandbox process runs on for ``--loop wanted`` (default: the environment's
    ``SYNCD_BENCH_SANDBOX_LOOP``, else ``auto``: uvloop when installed)."""
    wanted = wanted or os.environ.get("SYNCD_BENCH_SANDBOX_LOOP", "auto")
    if wanted == "asyncio" or (wanted == "auto" and importlib.util.find_spec("uvloop") is None):
        return "asyncio"
    return "uvloop"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sandbox_proc")
    ap.add_argument("--employees", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--whosoff-overlap", type=float, default=0.6)
    ap.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default=os.environ.get("SYNCD_BENCH_SANDBOX_LOOP", "auto"),
        help="event loop of the sandbox process (auto: uvloop when installed)",
    )
    args = ap.parse_args(argv)
    if loop_of(args.loop) == "uvloop":
        import uvloop  # raises if --loop uvloop was asked and it is not installed

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    options = SandboxOptions(
        employees=args.employees,
        seed=args.seed,
        host=args.host,
        port=args.port,
        whosoff_overlap=args.whosoff_overlap,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
