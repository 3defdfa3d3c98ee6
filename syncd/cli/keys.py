"""``syncd keys export``: the external keys syncd will use, for the admin's mapping form (nothing sent)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from syncd.cli.common import interruptible, load, run_async
from syncd.config import Settings
from syncd.db import target
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.engine.run_report import RunReport
from syncd.errors import UsageError
from syncd.literal import visible
from syncd.onboarding.export import KINDS, export
from syncd.onboarding.fill import fill
from syncd.states import ExitCode


async def _desired(settings: Settings) -> tuple[dict[str, dict[str, Any]] | None, RunReport]:
    """The desired directory from the current sources (a dry run: nothing is sent or staged)."""
    async with SyncContext.open(settings) as ctx, interruptible(ctx):
        # members held back by a collision are in it (reconcile=∅): they are the ones to map
        report = await run_cycle(ctx, trigger="keys", dry_run=True, reconcile=frozenset())
    if report.desired is None:
        print(f"syncd: error: {report.error or 'no desired directory could be made'}", file=sys.stderr)  # noqa: T201
    return report.desired, report


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    desired, report = await _desired(settings)
    if desired is None:
        return ExitCode.FAILED
    kinds = [args.kind] if args.kind else list(KINDS)
    for path, kind, count in export(desired, kinds, args.format, Path(args.out)):
        print(f"{kind}: {count} rows in {path}")  # noqa: T201
    if report.stale:
        stale = ", ".join(f"{s} {k}" for s, k, _ in report.stale)
        print(f"note: {stale} could not be read now; its last good read was used", file=sys.stderr)  # noqa: T201
    return ExitCode.OK


async def _fill(args: argparse.Namespace, settings: Settings) -> int:
    desired, _ = await _desired(settings)
    if desired is None:
        return ExitCode.FAILED
    form = Path(args.form)
    out = Path(args.out) if args.out else form.with_name(f"{form.stem}-filled.xlsx")
    report = fill(form, out, args.kind, desired)
    async with SyncContext.open(settings) as ctx:  # what `syncd plan` expects the first sync to adopt
        await target.remember_mapping(ctx.sessions, args.kind, len(report.matched) + len(report.kept))
    lines = [
        f"columns used: {report.layout.describe()}",
        f"matched: {len(report.matched)} rows (external key written)",
    ]
    if report.kept:
        lines.append(f"already keyed: {len(report.kept)} rows (left as they are)")
    lines.append(
        f"unmatched: {len(report.unmatched)} rows in WORKBOX but not in HR (left empty, never guessed)"
    )
    lines += [f"  row {row}: {visible(what)}" for row, what in report.unmatched]
    lines.append(f"ambiguous: {len(report.ambiguous)} rows (more than one candidate: left empty)")
    lines += [f"  row {row}: {visible(what)}: {', '.join(keys)}" for row, what, keys in report.ambiguous]
    lines.append(
        f"absent from WORKBOX: {len(report.absent)} {args.kind} entities of HR (the first sync creates them)"
    )
    lines.append(
        f"filled form: {out} (upload it in the NCP console: WORKBOX > Developers > Connect organisation)"
    )
    print("\n".join(lines))  # noqa: T201
    return ExitCode.OK


def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_command == "fill" and not Path(args.form).is_file():
        raise UsageError(f"no such file: {args.form}")
    action = _fill if args.keys_command == "fill" else _export
    return run_async(action, args, load(args))
