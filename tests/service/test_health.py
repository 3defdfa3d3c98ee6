"""/readyz follows staleness and database reachability; `syncd healthcheck` follows /readyz."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from syncd.sandbox import SandboxOptions, run_sandbox
from tests.support.config import DAEMON, write_config
from tests.support.pg import POSTGRES_URL, asyncpg_dsn
from tests.support.process import Daemon, base_env

pytestmark = pytest.mark.slow


async def wait_ready(d: Daemon, want: int, timeout: float) -> dict[str, object]:
    async def poll() -> dict[str, object]:
        while True:
            status, body = await d.get("/readyz")
            if status == want:
                return dict(json.loads(body))
            await asyncio.sleep(0.1)

    try:
        async with asyncio.timeout(timeout):
            return await poll()
    except TimeoutError:
        raise AssertionError(f"/readyz never answered {want}\n{d.tail()}") from None


def healthcheck(d: Daemon) -> int:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "healthcheck", "--url", d.url("/readyz")],
        env=base_env(), capture_output=True, timeout=30, check=False,
    ).returncode  # fmt: skip


async def test_readyz_turns_unready_when_the_sync_is_stale_and_ready_after_recovery(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=30, seed=8, port=0)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}"
        config = write_config(
            tmp_path / "syncd.toml",
            sb,
            url,
            base=DAEMON,
            sync={"schedule": "1s"},
            server={"max_staleness": 4.0},
        )
        d = await Daemon(config, "run").start()
        try:
            await d.wait_event("health.listening", timeout=30)
            body = await wait_ready(d, 200, timeout=30)
            assert body["database"] == "ok" and body["role"] == "leader"
            assert await asyncio.to_thread(healthcheck, d) == 0

            sb.faults["whosoff"].error_rate = 1.0  # every WhosOff call fails: no more successful syncs
            body = await wait_ready(d, 503, timeout=30)
            assert body["database"] == "ok" and float(str(body["age_seconds"])) > 4.0
            assert await asyncio.to_thread(healthcheck, d) == 1

            sb.faults["whosoff"].error_rate = 0.0
            await wait_ready(d, 200, timeout=30)
            d.signal(signal.SIGTERM)
            assert await d.wait(timeout=10) == 0
        finally:
            await d.stop()


async def test_readyz_turns_unready_while_the_database_is_down(postgres_url: str, tmp_path: Path) -> None:
    name = postgres_url.rpartition("/")[2]
    admin_dsn = asyncpg_dsn(POSTGRES_URL)
    async with run_sandbox(SandboxOptions(employees=30, seed=8, port=0)) as sb:
        config = write_config(tmp_path / "syncd.toml", sb, postgres_url, base=DAEMON, sync={"schedule": "1s"})
        d = await Daemon(config, "run").start()
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await d.wait_event("health.listening", timeout=30)
            await wait_ready(d, 200, timeout=30)

            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            body = await wait_ready(d, 503, timeout=15)
            assert str(body["database"]).startswith("unreachable"), body
            assert (await d.get("/healthz"))[0] == 200  # alive all the same

            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await wait_ready(d, 200, timeout=15)
            d.signal(signal.SIGTERM)
            assert await d.wait(timeout=10) == 0
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
            await d.stop()
