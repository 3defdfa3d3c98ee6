"""One benchmark leg: syncd's real engine against a running sandbox, on one database, three scenarios.

1. ``initial``: empty WORKBOX, empty database;
2. ``noop``: the same data again (nothing to push);
3. ``changed``: after ``--fraction`` of the employees changed (see :mod:`bench.mutate`).

Per scenario: ``report.timings`` per stage, the peak RSS of this process per stage (sampled every
50 ms), the plan summary and the WORKBOX requests the sandbox saw.  Runs in a process of its own so its
RSS is the engine's alone: ``python -m bench.worker --sandbox URL --db-url URL [--profile DIR]``.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import subprocess
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from bench.control import REPO, Control
from bench.rss import MB, RssSampler, ru_maxrss_bytes
from syncd.config import Settings
from syncd.engine import reassert
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.sandbox import syncd_config_for

STAGES = ("recover", "pull", "stage", "merge", "plan", "apply")
LATENCY_MS = 20.0
CONCURRENCY = 16


class EventClock:
    """A structlog processor that stamps the engine's log events and drops them (no output)."""

    KEEP = ("records", "rejected", "inserted", "updated", "deleted", "unchanged", "source", "kind")

    def __init__(self) -> None:
        self.events: list[tuple[str, float, dict[str, Any]]] = []
        self.warnings: list[str] = []

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        name = str(event_dict.get("event"))
        self.events.append((name, time.monotonic(), {k: event_dict[k] for k in self.KEEP if k in event_dict}))
        if method in ("warning", "error", "critical", "exception") and len(self.warnings) < 20:
            self.warnings.append(
                f"{method}: {name} {dict((k, v) for k, v in event_dict.items() if k != 'event')}"[:300]
            )
        raise structlog.DropEvent

    def last(self, name: str) -> float | None:
        return next((t for n, t, _ in reversed(self.events) if n == name), None)

    def all(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, _, kw in self.events if n == name]


def config_for(
    info: dict[str, Any], db_url: str, *, page_size: int = 1000, full_every: str = "0"
) -> dict[str, dict[str, Any]]:
    """The bench's syncd configuration (section → keys) for the sandbox process whose ``/_sandbox/``
    index is ``info``: pushes bounded by the injected latency alone, deletions lenient, and (unless
    ``full_every`` says otherwise) a full read every cycle, the cost the targets are about."""
    transport = {
        "timeout": 300.0,
        "retry_attempts": 3,
        "retry_backoff_initial": 0.1,
        "retry_backoff_max": 1.0,
    }
    return syncd_config_for(
        info,
        db_url,
        infinityhr={**transport, "page_size": page_size},
        whosoff=transport,
        workbox={**transport, "max_concurrency": CONCURRENCY, "requests_per_second": 100000.0},
        sync={
            "max_deletes": 10**9,
            "max_delete_ratio": 1.0,
            "max_source_shrink": 0.5,
            "full_every": full_every,
        },
    )


def settings_for(info: dict[str, Any], db_url: str) -> Settings:
    """Settings for the sandbox subprocess whose ``/_sandbox/`` index is ``info``."""
    return Settings.model_validate(config_for(info, db_url))


def windows(timings: dict[str, float], clock: EventClock) -> dict[str, tuple[float, float]]:
    """Each stage's (start, end) on the monotonic clock, anchored on ``run.started`` and ``plan.made``."""
    start = clock.last("run.started")
    plan_made = clock.last("plan.made")
    if start is None:
        return {}
    out: dict[str, tuple[float, float]] = {}
    t = start
    for name in ("recover", "pull", "stage"):
        out[name] = (t, t + timings.get(name, 0.0))
        t = out[name][1]
    if plan_made is not None:
        plan_start = plan_made - timings.get("plan", 0.0)
        out["merge"] = (t, plan_start)
        out["plan"] = (plan_start, plan_made)
        out["apply"] = (plan_made, plan_made + timings.get("apply", 0.0))
    return out


async def scenario(
    name: str,
    ctx: SyncContext,
    control: Control,
    sampler: RssSampler,
    clock: EventClock,
    profile: Path | None,
) -> dict[str, Any]:
    control.reset_requests()
    clock.events.clear()
    gc.collect()
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="enabled")
        profiler.start()
    t0 = time.monotonic()
    report = await run_cycle(ctx, trigger="bench")
    t1 = time.monotonic()
    if profiler is not None:
        profiler.stop()
        assert profile is not None
        profile.mkdir(parents=True, exist_ok=True)
        (profile / f"{name}.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        (profile / f"{name}.html").write_text(profiler.output_html())
        flat = profiler.output_text(unicode=True, show_all=True, flat=True, time="percent_of_total")
        (profile / f"{name}.flat.txt").write_text(flat)
        profiler.last_session.save(str(profile / f"{name}.pyisession"))
    summary = control.request_summary()
    win = windows(report.timings, clock)
    rss = {stage: sampler.peak(a, b) / MB for stage, (a, b) in win.items()}
    pulled = clock.all("pull.done")
    staged = clock.all("stage.done")
    applied = report.applied
    return {
        "result": report.result,
        "exit_code": report.exit_code,
        "error": report.error,
        "held": report.held,
        "wall_s": t1 - t0,
        "timings": report.timings,
        "source_rows": sum(int(p.get("records", 0)) + int(p.get("rejected", 0)) for p in pulled),
        "pulled": {f"{p.get('source')}:{p.get('kind')}": p.get("records") for p in pulled},
        "staged": {
            f"{s.get('source')}:{s.get('kind')}": {
                k: s.get(k) for k in ("inserted", "updated", "deleted", "unchanged")
            }
            for s in staged
        },
        "ops": len(report.ops),
        "plan": report.summary,
        "applied": applied.counts() if applied else {},
        "applied_done": applied.total_done if applied else 0,
        "failed": len(applied.failed) if applied else 0,
        "quarantined": report.quarantined,
        # re-assertion (drift repair) as configured, the defaults here: its expected share of the ledger
        "ledger": report.ledger_size or 0,
        "reasserts": sum(report.reasserts.values()),
        "reassert_share": reassert.share(
            report.ledger_size or 0,
            ctx.settings.sync.reassert_days,
            reassert.cycles_per_day(ctx.settings.sync.schedule),
        ),
        "requests": summary.get("by_vendor", {}),
        "workbox_requests": int(summary.get("by_vendor", {}).get("workbox", 0)),
        "rss_mb": rss,
        "rss_peak_mb": sampler.peak(t0, t1) / MB,
        "warnings": clock.warnings[:10],
        "profiled": profile is not None,
    }


def mutate(sandbox: str, fraction: float, seed: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.mutate",
            "--sandbox",
            sandbox,
            "--fraction",
            str(fraction),
            "--seed",
            str(seed),
        ],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=1800,
    )
    return dict(json.loads(out.stdout.decode().strip().splitlines()[-1]))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    clock = EventClock()
    structlog.configure(
        processors=[clock],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    control = Control(args.sandbox)
    info = control.index()
    faults = control.set_faults("workbox", latency_ms=LATENCY_MS, jitter_ms=0.0)
    settings = settings_for(info, args.db_url)
    sampler = RssSampler().start()
    out: dict[str, Any] = {"workbox_faults": faults, "scenarios": {}}
    profile_dir = Path(args.profile) if args.profile else None
    try:
        t = time.monotonic()
        async with SyncContext.open(settings) as ctx:
            out["open_s"] = time.monotonic() - t
            for name in args.scenarios.split(","):
                if name == "changed":
                    out["mutation"] = mutate(args.sandbox, args.fraction, args.seed)
                want = profile_dir if profile_dir and name in args.profile_scenarios.split(",") else None
                out["scenarios"][name] = await scenario(name, ctx, control, sampler, clock, want)
    finally:
        sampler.stop()
    out["ru_maxrss_mb"] = ru_maxrss_bytes() / MB
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.worker")
    ap.add_argument("--sandbox", required=True)
    ap.add_argument("--db-url", required=True)
    ap.add_argument("--scenarios", default="initial,noop,changed")
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", default="", help="write pyinstrument profiles into this directory")
    ap.add_argument("--profile-scenarios", default="initial,noop,changed")
    args = ap.parse_args(argv)
    result = asyncio.run(main_async(args))
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
