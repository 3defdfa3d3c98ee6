"""Failure modes found by the reliability campaigns.

Each was first demonstrated by a failing test here, then fixed in the engine, clients or config;
the tests stay as regression tests.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import asyncpg
import pytest

from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.errors import ProtocolError
from syncd.sandbox import Faults, SandboxOptions, run_sandbox
from tests.support.campaigns.hostile import config_cases, deep_json, wo_only, wo_payload
from tests.support.config import CAMPAIGN, CAMPAIGN_PROCESS, settings_for, write_config
from tests.support.pg import asyncpg_dsn
from tests.support.process import cli_in_process, run_syncd
from tests.support.workbox import workbox_state

# ------------------------------------------------------------------------------- fixed (vendors)


async def test_whosoff_json_nested_beyond_the_recursion_limit_is_a_protocol_error(tmp_path: Path) -> None:
    """Was: RecursionError escaped the WhosOff client and crashed the whole cycle with a traceback."""
    async with run_sandbox(SandboxOptions(employees=5, seed=1, port=0)) as sb:
        settings = settings_for(sb, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", base=CAMPAIGN)
        wo_payload(deep_json())(sb)
        async with SyncContext.open(settings, migrate=False) as ctx:
            with pytest.raises(ProtocolError):
                async with asyncio.timeout(30):
                    await ctx.whosoff.get_users()


# ------------------------------------------------------------------------------- for the lead


@pytest.mark.parametrize("damage", ["status_id", "duplicate_user_id"])
async def test_rejected_whosoff_only_record_never_deletes_its_member(damage: str, tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=20, seed=5, port=0)) as sb:
        settings = settings_for(
            sb, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", base=CAMPAIGN, sync={"include_whosoff_only": True}
        )
        async with SyncContext.open(settings) as ctx:
            assert (await run_cycle(ctx)).exit_code == 0
            user = wo_only(sb)
            key = ("user", f"wo-{user.user_id}")
            assert key in workbox_state(sb)
            if damage == "status_id":
                user.status_id = "yes"  # type: ignore[assignment]
            else:
                twin = copy.copy(user)
                sb.company.whosoff_users[max(sb.company.whosoff_users) + 1000] = twin
            report = await run_cycle(ctx)
            assert report.rejects, "the damaged record was not even rejected"
            assert sb.request_log.count(vendor="workbox", method="DELETE") == 0
            assert key in workbox_state(sb)


async def test_world_readable_secret_file_error_names_the_key(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=5, seed=1, port=0)) as sb:
        outcomes = {
            o.case.name: o for o in config_cases(sb, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path)
        }
    o = outcomes["world-readable secret file"]
    assert o.ok, f"{o.actual}: {o.note}"


def test_config_errors_are_one_line_naming_the_key(tmp_path: Path) -> None:
    code, err = cli_in_process(["--config", str(tmp_path / "missing.toml"), "--run-once"], {})
    assert code == 2 and len(err.strip().splitlines()) == 1, err


@pytest.mark.postgres
async def test_database_connection_lost_mid_apply_is_survived_or_fails_cleanly(
    postgres_url: str, tmp_path: Path
) -> None:
    """Every connection of the run is cut while it applies.  Settles are batched and the pool
    reconnects, so the run may survive (its fencing token is still current: nobody took over) or
    fail; either way with no traceback, and the next run converges."""
    faults = {"workbox": Faults(latency_ms=20)}
    async with run_sandbox(SandboxOptions(employees=30, seed=2, port=0, faults=faults)) as sb:
        config = tmp_path / "syncd.toml"
        write_config(config, sb, postgres_url, base=(CAMPAIGN, CAMPAIGN_PROCESS), log={"level": "info"})
        name = postgres_url.rpartition("/")[2]

        async def cut_when_applying() -> None:
            async with asyncio.timeout(60):
                while sb.request_log.count(vendor="workbox") < 3:
                    await asyncio.sleep(0.005)
            admin_url = postgres_url.rpartition("/")[0] + "/postgres"
            admin = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=10)
            try:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
            finally:
                await admin.close()

        cutter = asyncio.create_task(cut_when_applying())
        run = await run_syncd(config, tmp_path / "run.log", sb=sb, timeout=90)
        await asyncio.wait_for(cutter, 60)
        nxt = await run_syncd(config, tmp_path / "run.log", sb=sb, timeout=90)
        assert nxt.exit_code == 0  # the next run converges
        assert run.exit_code in (0, 1)
        assert "Traceback" not in run.log, run.log[-2000:]
        if run.exit_code == 1:
            assert "syncd: error:" in run.log or '"run.failed"' in run.log, run.log[-2000:]
