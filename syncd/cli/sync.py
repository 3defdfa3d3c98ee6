"""The sync commands: the daemon and ``--run-once``, ``plan``, ``approve``, ``runs``, ``quarantine``,
``healthcheck``."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from contextlib import AbstractAsyncContextManager

from syncd import commands
from syncd import report as report_mod
from syncd.cli.common import interruptible, load, run_async
from syncd.config import Settings, load_settings
from syncd.engine.approval import request_approval, resolve_plan_id
from syncd.engine.context import SyncContext
from syncd.engine.cycle import approve, run_cycle
from syncd.errors import ConfigError, LeaseHeldError, UsageError
from syncd.literal import literal
from syncd.logging import terminal_console
from syncd.service.lease import LeaderLease, hold_lease
from syncd.states import ExitCode, RunResult


async def _once(
    args: argparse.Namespace, settings: Settings, dry_run: bool, reconcile: frozenset[str] | None = None
) -> int:
    trigger = "once" if reconcile is None else "reconcile"
    async with SyncContext.open(settings) as ctx, contextlib.AsyncExitStack() as stack:
        console = terminal_console()
        if console is not None:  # a live progress display on a terminal; log lines print above it
            ctx.progress = stack.enter_context(report_mod.TerminalProgress(console))
        async with interruptible(ctx):
            full = getattr(args, "full_read", False)
            if dry_run:  # sends nothing: no lease needed
                report = await run_cycle(
                    ctx, trigger=trigger, dry_run=True, reconcile=reconcile, full_read=full
                )
            else:
                async with _lease(settings, ctx) as lease:
                    ctx.fencing_token = lease.token
                    report = await run_cycle(ctx, trigger=trigger, reconcile=reconcile, full_read=full)
    out = report_mod.console()
    if dry_run:
        report_mod.print_plan(report, out)
    report_mod.print_run(report, out)
    return report.exit_code


def _lease(settings: Settings, ctx: SyncContext) -> AbstractAsyncContextManager[LeaderLease]:
    """The leader lease for a one-shot command (waits up to sync.lease_wait, then exit 1)."""
    s = settings.sync
    return hold_lease(settings.database.url, ctx.engine, period=s.lease_period, wait=s.lease_wait)


def cmd_run(args: argparse.Namespace) -> int:
    if not args.once:
        if args.dry_run:
            raise UsageError("--dry-run needs --once (the daemon always applies)")
        if getattr(args, "full_read", False):
            raise UsageError("--full-read needs --once (the daemon reads as sync.full_every says)")
        from syncd.service.daemon import run_daemon  # the scheduler and the server: the daemon only

        return run_async(run_daemon, load(args))
    return run_async(_once, args, load(args), args.dry_run)


async def reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """``syncd reconcile``: a cycle that re-asserts the whole directory (or one kind) now."""
    kinds = frozenset([args.kind] if args.kind else ("job-grade", "job-position", "dept", "user"))
    return await _once(args, settings, args.dry_run, kinds)


async def _healthcheck(args: argparse.Namespace, settings: Settings | None) -> int:
    from syncd.service.health import healthcheck as healthcheck_probe

    ok, line = await healthcheck_probe(settings, args.url)
    print(line, file=sys.stdout if ok else sys.stderr)
    return ExitCode.OK if ok else ExitCode.FAILED


def cmd_healthcheck(args: argparse.Namespace) -> int:
    # 0 or 1 only: container runtimes reserve other exit codes of a health check
    try:
        settings = None if args.url else load_settings(args.config)
    except ConfigError as exc:
        print(f"syncd: error: {exc}", file=sys.stderr)  # noqa: T201
        return ExitCode.FAILED
    return run_async(_healthcheck, args, settings)


async def plan(args: argparse.Namespace, settings: Settings) -> int:
    async with SyncContext.open(settings) as ctx, interruptible(ctx):
        report = await run_cycle(ctx, trigger="plan", dry_run=True, full_read=args.full_read)
    if args.json:
        print(report_mod.plan_json(report))  # noqa: T201
    else:
        out = report_mod.console()
        report_mod.print_plan(report, out, show_ops=len(report.ops) if args.all else report_mod.MAX_OPS_SHOWN)
        if report.held:
            out.print(literal(report_mod.held_hint(report)), soft_wrap=True)
    if report.error and report.result not in (RunResult.DRY_RUN, RunResult.STALE):
        print(f"syncd: error: {report.error}", file=sys.stderr)  # noqa: T201
    return ExitCode.FAILED if report.result in (RunResult.FAILED, RunResult.STALE) else ExitCode.OK


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry and no $USER
        return f"uid {os.getuid()}"


async def approve_plan(args: argparse.Namespace, settings: Settings) -> int:
    s = settings.sync
    approver = args.by or _login_name()
    async with SyncContext.open(settings) as ctx, interruptible(ctx):
        args.plan_id = await resolve_plan_id(ctx, args.plan_id)
        try:
            lease_cm = hold_lease(settings.database.url, ctx.engine, period=s.lease_period, wait=0)
            async with lease_cm as lease:
                ctx.fencing_token = lease.token
                report = await approve(ctx, args.plan_id, approver)
        except LeaseHeldError as busy:
            # a daemon (or another run) leads: it applies the approval at the start of its next cycle
            await request_approval(ctx, args.plan_id, approver)
            note = (
                f"approval of plan {args.plan_id} queued: the leader ({busy.holder or 'another process'}) "
                f"applies it within seconds; `{commands.command('runs')}` shows it queued, then the result"
            )
            print(note)  # noqa: T201
            return ExitCode.OK
    report_mod.print_run(report, report_mod.console())
    return report.exit_code
