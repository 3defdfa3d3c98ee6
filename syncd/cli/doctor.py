"""``syncd doctor``: read-only checks against the real services, each failure with its fix."""

from __future__ import annotations

import argparse
import json
import sys

from syncd import commands
from syncd.cli.common import load, run_async
from syncd.config import Settings
from syncd.doctor import Check, run_doctor
from syncd.doctor.check import VENDORS
from syncd.literal import visible
from syncd.states import ExitCode


def _say(check: Check) -> None:
    mark = "ok  " if check.ok else "FAIL"
    print(f"{mark} {check.area} {check.name}: {visible(check.detail)}", flush=True)  # noqa: T201
    if check.fix:
        print("     set in the configuration file:")  # noqa: T201
        for line in check.fix_text().splitlines():
            print(f"       {line}" if line else "")  # noqa: T201
    if check.hint and not check.ok:
        print(f"     {visible(check.hint)}")  # noqa: T201


def _json_line(check: Check) -> None:
    print(json.dumps(check.to_json(), ensure_ascii=False), flush=True)  # noqa: T201


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    vendors = [args.vendor] if args.vendor else list(VENDORS)
    checks = await run_doctor(settings, vendors, on_check=_json_line if args.json else _say)
    failed = [c for c in checks if not c.ok]
    if not args.json:
        advice = f"; set what is above and run `{commands.command('doctor')}` again" if failed else ""
        print(f"{len(checks) - len(failed)} of {len(checks)} checks passed{advice}", file=sys.stderr)  # noqa: T201
    return ExitCode.FAILED if failed else ExitCode.OK


def cmd_doctor(args: argparse.Namespace) -> int:
    return run_async(_doctor, args, load(args))
