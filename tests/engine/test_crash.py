"""SIGKILL during apply, at many points, then run again at once: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.sandbox import Faults, Sandbox, SandboxOptions, run_sandbox
from tests.support.config import COMMAND, LENIENT_DELETES, settings_for, write_config
from tests.support.oracle import expected_directory

KILLS = 12


def workbox_count(sb: Sandbox) -> int:
    return int(sb.request_log.count(vendor="workbox"))


async def run_and_kill(config: Path, sb: Sandbox, after: int, log: Path) -> bool:
    """Start ``syncd --run-once``; SIGKILL it once ``after`` more WORKBOX requests arrived.
    Returns True if it was killed, False if it finished first."""
    start = workbox_count(sb)
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syncd",
            "--config",
            str(config),
            "--run-once",
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        async with asyncio.timeout(60):
            while proc.returncode is None and workbox_count(sb) < start + after:
                await asyncio.sleep(0.002)
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                return True
    return False


@pytest.mark.slow
async def test_sigkill_at_many_points_during_apply_then_rerun_converges(db_url: str, tmp_path: Path) -> None:
    faults = {"workbox": Faults(latency_ms=10)}
    async with run_sandbox(SandboxOptions(employees=70, seed=11, port=0, faults=faults)) as sb:
        config = write_config(tmp_path / "syncd.toml", sb, db_url, base=(COMMAND, LENIENT_DELETES))
        log = tmp_path / "runs.log"
        kills = 0
        rng_points = [3, 7, 1, 11, 5, 9, 2, 13, 4, 8, 6, 10]
        for n, after in enumerate(rng_points[:KILLS]):
            if n == KILLS // 2:
                # incremental changes half-way, so kills also land in updates and deletes
                emps = [e for e in sb.company.employee_list() if e.status == "Active"]
                for e in emps[:4]:
                    sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
                for e in emps[4:10]:
                    sb.mutate("rename", employee_id=e.employee_id, last_name="Crash")
                sb.mutate(
                    "hire",
                    department_code=emps[0].department_code,
                    first_name="After",
                    last_name="Crash",
                    work_email="after.crash@acme.example",
                )
            kills += await run_and_kill(config, sb, after, log)
        assert kills >= 10, f"only {kills} runs were killed mid-apply"

        # run again at once, in this process: converges without waiting on anything of the dead ones
        lenient = settings_for(sb, db_url, sync={"max_deletes": 1000, "max_delete_ratio": 1.0})
        async with SyncContext.open(lenient) as ctx:
            async with asyncio.timeout(60):
                report = await run_cycle(ctx)
            assert report.exit_code == 0, report.message()
            state = {(k, key): b for k, objs in sb.workbox_state.to_json().items() for key, b in objs.items()}
            assert state == expected_directory(sb.company)
            assert (await ctx.ledger_and_digest())[0] == state
            before = workbox_count(sb)
            again = await run_cycle(ctx)
            assert again.exit_code == 0 and workbox_count(sb) == before

        created = Counter(
            e["raw_path"]
            for e in sb.request_log
            if e["vendor"] == "workbox" and e["method"] == "POST" and e["status"] == 201
        )
        assert max(created.values()) == 1, "an object was created twice"
        # every killed run left journaled operations that the next start re-drove first
        recoveries = log.read_text().count('"apply.recovering"')
        assert recoveries >= kills - 1, (recoveries, kills)
        print(
            f"kills={kills} recoveries={recoveries} "
            f"E904 replays={sb.request_log.count(vendor='workbox', code='E904')}"
        )
