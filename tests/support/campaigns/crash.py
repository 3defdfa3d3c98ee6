# ruff: noqa: E501
"""Crash campaign: ``syncd --run-once`` killed with SIGKILL at random points of a sync, then restarted.

Each run: a batch of random HR changes (so every run has something to pull, stage and apply), a
``syncd --run-once`` subprocess killed either a random time after its ``run.started`` log line
(lands in recover, pull, stage, plan or apply) or after a random number of WORKBOX requests (lands in
apply), a consistency check of journal / ledger / WORKBOX at the instant of the kill, then a restart
(a fresh ``syncd --run-once``) and the final checks:

* converged — the restart exits 0 and WORKBOX equals the oracle (``tests/support/oracle.py``);
* duplicates — an object POSTed with 201 while it already existed, or two members sharing an e-mail;
* lost — an operation the journal says done that WORKBOX does not hold (checked at the kill and after
  the restart);
* ledger mismatches — ledger != WORKBOX after the restart (or, at the kill, a difference that no
  unsettled operation explains).

With ``pg_restart`` (PostgreSQL only) one more run is interrupted by a PostgreSQL restart while it
applies: it must exit 1 without a traceback and leave nothing half-recorded; the next run converges.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.sandbox import Faults, SandboxOptions, run_sandbox
from tests.support.config import CAMPAIGN, CAMPAIGN_PROCESS, write_config
from tests.support.process import run_syncd

from .common import (
    check_consistency,
    database,
    db_label,
    dump_tables,
    duplicates,
    oracle,
    random_changes,
    read_journal,
    workbox_state,
)
from .leaks import LeakWatch

Say = Callable[[str], None]


@dataclass
class CrashRun:
    n: int
    mode: str  # "time" | "requests"
    point: float
    killed: bool
    phase: str
    lost_at_kill: int
    mismatch_at_kill: int
    restart_exit: int | None
    restart_seconds: float
    converged: bool
    lost: int
    ledger_mismatch: int
    details: list[str] = field(default_factory=list)


@dataclass
class PgRestart:
    exit_code: int | None
    traceback: bool
    error_line: str
    lost: int
    mismatch: int
    next_exit: int | None
    converged: bool


@dataclass
class CrashReport:
    db: str
    seed: int
    runs: list[CrashRun]
    duplicates: list[str]
    leak_hits: list[tuple[str, str, str]]
    leak_values: dict[str, int]
    pg_restart: PgRestart | None = None

    @property
    def converged(self) -> int:
        return sum(r.converged for r in self.runs)

    @property
    def lost(self) -> int:
        return sum(r.lost + r.lost_at_kill for r in self.runs)

    @property
    def ledger_mismatches(self) -> int:
        return sum(r.ledger_mismatch + r.mismatch_at_kill for r in self.runs)

    @property
    def killed(self) -> int:
        return sum(r.killed for r in self.runs)

    def phases(self) -> dict[str, int]:
        return dict(Counter(r.phase for r in self.runs if r.killed))

    def failures(self) -> list[str]:
        out = [f"run {r.n}: {d}" for r in self.runs for d in r.details]
        out += [f"duplicate: {d}" for d in self.duplicates]
        out += [f"leak: {what} in {where} ({v})" for what, where, v in self.leak_hits]
        return out


async def crash_campaign(
    db: str,
    workdir: Path,
    *,
    runs: int = 50,
    seed: int = 1,
    employees: int = 60,
    pg_restart: bool = False,
    say: Say = print,
) -> CrashReport:
    rng = random.Random(seed)
    say(f"crash campaign on {db}: {runs} runs, seed {seed}")
    faults = {
        "workbox": Faults(latency_ms=8),
        "infinityhr": Faults(latency_ms=15),
        "whosoff": Faults(latency_ms=15),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    async with (
        run_sandbox(SandboxOptions(employees=employees, seed=seed, port=0, faults=faults)) as sb,
        database(db, workdir) as url,
    ):
        watch = LeakWatch(sb)
        config = workdir / f"crash-{db_label(db)}.toml"
        write_config(config, sb, url, base=(CAMPAIGN, CAMPAIGN_PROCESS))
        log = workdir / f"crash-{db_label(db)}.log"
        log.write_bytes(b"")
        est = 2.0  # seconds a run takes from run.started to exit; refined by every restart
        rows: list[CrashRun] = []
        for n in range(1, runs + 1):
            if n > 1:
                random_changes(sb, rng, rng.randint(3, 12))
                watch.observe()
            pending = sum(
                1
                for k in set(oracle(sb)) | set(workbox_state(sb))
                if oracle(sb).get(k) != workbox_state(sb).get(k)
            )
            if rng.random() < 0.5:
                mode, point = "time", round(rng.uniform(0.0, est), 3)
                killed = await run_syncd(config, log, sb=sb, kill_after_s=point)
            else:
                mode, point = "requests", rng.randint(1, max(1, pending))
                killed = await run_syncd(config, log, sb=sb, kill_after_requests=int(point))
            ledger, ops = await read_journal(url)
            at_kill = check_consistency(ledger, ops, workbox_state(sb))
            restart = await run_syncd(config, log, sb=sb)
            if restart.run_seconds:
                est = 0.7 * est + 0.3 * restart.run_seconds
            ledger, ops = await read_journal(url)
            wb = workbox_state(sb)
            after = check_consistency(ledger, ops, wb)
            want = oracle(sb)
            converged = restart.exit_code == 0 and wb == want
            mismatch = sorted(k for k in set(ledger) | set(wb) if ledger.get(k) != wb.get(k))
            details = [f"lost at kill: {x}" for x in at_kill.lost]
            details += [f"ledger/WORKBOX mismatch at kill: {x}" for x in at_kill.ledger_mismatch]
            details += [f"lost after restart: {x}" for x in after.lost]
            details += [f"ledger != WORKBOX after restart: {k[0]}/{k[1]}" for k in mismatch]
            if not converged:
                diff = sorted(k for k in set(wb) | set(want) if wb.get(k) != want.get(k))
                details.append(
                    f"not converged: restart exit {restart.exit_code}, {len(diff)} objects differ "
                    f"(first: {diff[:3]}); last log line: {restart.log.strip().splitlines()[-1:]}"
                )
            row = CrashRun(
                n, mode, point, killed.killed, killed.phase, len(at_kill.lost), len(at_kill.ledger_mismatch),
                restart.exit_code, round(restart.seconds, 2), converged, len(after.lost), len(mismatch), details,
            )  # fmt: skip
            rows.append(row)
            say(
                f"  run {n:3d}: kill by {mode:8s} at {point:<6} → {'killed in ' + killed.phase if killed.killed else 'finished first':18s}"
                f" restart exit {restart.exit_code} in {restart.seconds:5.1f}s, converged={converged}"
                + (f"  ← {details}" if details else "")
            )
        pg: PgRestart | None = None
        if pg_restart and db_label(db) == "postgres":
            pg = await _pg_restart_run(sb, config, log, url, rng, say)
            watch.observe()
        texts = {log.name: log.read_text(errors="replace"), "database": await dump_tables(url)}
        hits = watch.scan(texts)
        return CrashReport(db, seed, rows, duplicates(sb), hits, watch.counts(), pg)


# --------------------------------------------------------------------------- PostgreSQL restart


def pg_version() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir() if p.name[0].isdigit())
    return versions[-1]


def _pg_ctl(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", action],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def ensure_postgres_running() -> None:
    status = _pg_ctl("status")
    if status.returncode != 0:
        _pg_ctl("start")


async def _pg_restart_run(
    sb: Any, config: Path, log: Path, url: str, rng: random.Random, say: Say
) -> PgRestart:
    random_changes(sb, rng, 25)
    restarted = asyncio.Event()

    async def restart_when_applying() -> None:
        start = int(sb.request_log.count(vendor="workbox"))
        async with asyncio.timeout(60):
            while sb.request_log.count(vendor="workbox") < start + 3:
                await asyncio.sleep(0.002)
        t = time.monotonic()
        result = await asyncio.to_thread(_pg_ctl, "restart")
        say(f"  PostgreSQL restarted in {time.monotonic() - t:.1f}s (pg_ctlcluster exit {result.returncode})")
        restarted.set()

    pg_log = log.with_name(log.stem + "-pg-restart.log")
    pg_log.write_bytes(b"")
    try:
        task = asyncio.create_task(restart_when_applying())
        run = await run_syncd(config, pg_log, sb=sb, timeout=120)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await task
    finally:
        await asyncio.to_thread(ensure_postgres_running)
    ledger, ops = await read_journal(url)
    cons = check_consistency(ledger, ops, workbox_state(sb))
    text = run.log
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("{")]
    nxt = await run_syncd(config, pg_log, sb=sb)
    wb = workbox_state(sb)
    ledger, _ = await read_journal(url)
    converged = nxt.exit_code == 0 and wb == oracle(sb) and ledger == wb
    out = PgRestart(
        run.exit_code, "Traceback" in text, (lines or [""])[-1][:200], len(cons.lost),
        len(cons.ledger_mismatch), nxt.exit_code, converged,
    )  # fmt: skip
    say(f"  PostgreSQL restart mid-apply: {out} (restarted during the run: {restarted.is_set()})")
    with log.open("a") as f:
        f.write(pg_log.read_text(errors="replace"))
    return out
