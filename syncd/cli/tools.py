"""``syncd demo`` and ``syncd sandbox``: the bundled sandbox, whole or served."""

from __future__ import annotations

import argparse

from syncd.cli.common import run_async
from syncd.logging import configure_logging


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from syncd.demo import run_demo

    configure_logging("debug" if args.debug else (args.log_level or "warning"), args.log_format or "auto")
    directory = Path(args.dir) if args.dir else None
    return run_async(lambda: run_demo(employees=args.employees, seed=args.seed, directory=directory))


def cmd_sandbox(args: argparse.Namespace) -> int:
    from syncd.sandbox.server import main as sandbox_main

    configure_logging("debug" if args.debug else (args.log_level or "info"), args.log_format or "auto")
    code: int = sandbox_main(list(args.sandbox_args))
    return code
