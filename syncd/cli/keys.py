"""``syncd keys export``: the external keys syncd will use, for the admin's mapping form (nothing sent)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from syncd.cli.common import interruptible, load, run_async
from syncd.config import Settings
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.onboarding.export import KINDS, export
from syncd.states import ExitCode


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    async with SyncContext.open(settings) as ctx, interruptible(ctx):
        report = await run_cycle(ctx, trigger="keys", dry_run=True)
    if report.desired is None:
        print(f"syncd: error: {report.error or 'no desired directory could be made'}", file=sys.stderr)  # noqa: T201
        return ExitCode.FAILED
    kinds = [args.kind] if args.kind else list(KINDS)
    for path, kind, count in export(report.desired, kinds, args.format, Path(args.out)):
        print(f"{kind}: {count} rows in {path}")  # noqa: T201
    if report.stale:
        stale = ", ".join(f"{s} {k}" for s, k, _ in report.stale)
        print(f"note: {stale} could not be read now; its last good read was used", file=sys.stderr)  # noqa: T201
    return ExitCode.OK


def cmd_keys(args: argparse.Namespace) -> int:
    return run_async(_export, args, load(args))
