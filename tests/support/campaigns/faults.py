# ruff: noqa: E501
"""Fault campaign: every vendor misbehaves at once, over several rounds of HR changes.

Sandbox faults on all three vendors: 20% injected 5xx, 5% hangs (``hang_seconds`` 5 against a client
timeout of 2 s), bursts of 429 with ``Retry-After: 1`` (a background task arms a burst every ~1.5 s),
a 2-second WhosOff token lifetime, a 2-second InfinityHR idle timeout and a 6-minute WORKBOX clock
skew.  Cycles run in-process (``run_cycle``) with structlog writing JSON to a file for the leak scan.
After the initial sync and after each round of changes, cycles run until WORKBOX equals the oracle and
the ledger equals WORKBOX; the number of cycles that took is the figure (target: ≤ 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.logging import configure_logging
from syncd.sandbox import Faults, SandboxOptions, run_sandbox
from tests.support.config import CAMPAIGN, settings_for

from .common import (
    database,
    db_label,
    dump_tables,
    oracle,
    quiet_libraries,
    random_changes,
    reset_logging,
    workbox_state,
)
from .leaks import LeakWatch

Say = Callable[[str], None]
CLIENT = {"timeout": 2.0, "retry_attempts": 8, "retry_backoff_initial": 0.05, "retry_backoff_max": 0.5,
          "retry_deadline": 60.0}  # fmt: skip
MAX_CYCLES = 8


@dataclass
class Round:
    changes: int
    cycles: int  # cycles until exact (MAX_CYCLES + 1 = never)
    exact: bool
    exits: list[int] = field(default_factory=list)


@dataclass
class FaultReport:
    db: str
    rounds: list[Round]
    injected: int
    leak_hits: list[tuple[str, str, str]]
    leak_values: dict[str, int]

    @property
    def cycles_list(self) -> list[int]:
        return [r.cycles for r in self.rounds]

    @property
    def max_cycles(self) -> int:
        return max(self.cycles_list[1:] or self.cycles_list)

    @property
    def total_cycles(self) -> int:
        return sum(len(r.exits) for r in self.rounds)

    @property
    def all_exact(self) -> bool:
        return all(r.exact for r in self.rounds)


def hostile_faults() -> dict[str, Faults]:
    f = {"error_rate": 0.2, "hang_rate": 0.05, "hang_seconds": 5.0, "retry_after": 1}
    faults = {v: Faults(**f) for v in ("infinityhr", "whosoff", "workbox")}  # type: ignore[arg-type]
    faults["workbox"].clock_skew = 360.0
    return faults


async def fault_campaign(
    db: str, workdir: Path, *, rounds: int = 4, seed: int = 1, employees: int = 60, say: Say = print
) -> FaultReport:
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"faults-{db_label(db)}.log"
    say(f"fault campaign on {db}: {rounds} change rounds, seed {seed}")
    options = SandboxOptions(
        employees=employees, seed=seed, port=0, faults=hostile_faults(),
        whosoff_token_lifetime=2.0, infinityhr_idle_timeout=2.0,
    )  # fmt: skip
    async with run_sandbox(options) as sb, database(db, workdir) as url:
        watch = LeakWatch(sb)
        settings = settings_for(sb, url, base=CAMPAIGN)
        settings = settings.model_copy(
            update={
                v: getattr(settings, v).model_copy(update=CLIENT)
                for v in ("infinityhr", "whosoff", "workbox")
            }
        )
        with log_path.open("w") as stream:
            configure_logging("debug", "json", secrets=settings.secret_values(), stream=stream)
            quiet_libraries()

            async def bursts() -> None:
                while True:
                    await asyncio.sleep(rng.uniform(1.0, 2.0))
                    sb.faults[rng.choice(("infinityhr", "whosoff", "workbox"))].rate_limit = rng.randint(2, 5)

            burster = asyncio.create_task(bursts())
            out: list[Round] = []
            try:
                async with SyncContext.open(settings) as ctx:
                    for n in range(rounds + 1):
                        changes = len(random_changes(sb, rng, rng.randint(5, 12))) if n else 0
                        watch.observe()
                        r = Round(changes, MAX_CYCLES + 1, False)
                        for cycle in range(1, MAX_CYCLES + 1):
                            async with asyncio.timeout(300):
                                report = await run_cycle(ctx)
                            r.exits.append(report.exit_code)
                            wb = workbox_state(sb)
                            if wb == oracle(sb) and (await ctx.ledger_and_digest())[0] == wb:
                                r.cycles, r.exact = cycle, True
                                break
                        out.append(r)
                        say(
                            f"  round {n} ({changes} changes): exact after {r.cycles} cycles (exits {r.exits})"
                        )
            finally:
                burster.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await burster
                reset_logging()
        injected = sum(
            1
            for e in sb.request_log
            if e["code"] in ("HANG", "DROP") or e["status"] in (429, 500, 502, 503, 504)
        )
        texts = {log_path.name: log_path.read_text(errors="replace"), "database": await dump_tables(url)}
        return FaultReport(db, out, injected, watch.scan(texts), watch.counts())
