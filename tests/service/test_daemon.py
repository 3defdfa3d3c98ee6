"""`syncd run` as a real process against the sandbox (issue 6 acceptance: scheduler, keep-alive,
metrics, SIGTERM; sd_notify)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from tests.support.config import DAEMON, write_config
from tests.support.process import Daemon, base_env

pytestmark = pytest.mark.slow


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}"


def metric_samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name, []).extend(family.samples)
    return out


def metric_request_counts(samples: dict[str, list[Any]]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for s in samples.get("syncd_vendor_request_seconds", []):
        if s.name == "syncd_vendor_request_seconds_count":
            counts[(s.labels["vendor"], s.labels["status"])] += int(s.value)
    return +counts


def sandbox_request_counts(sb: Sandbox) -> Counter[tuple[str, str]]:
    return Counter((e["vendor"], str(e["status"])) for e in sb.request_log)


async def consistent_scrape(d: Daemon, sb: Sandbox, timeout: float = 15.0) -> dict[str, list[Any]]:
    """Scrape /metrics at a moment when no vendor request is in flight (the counts must then agree)."""
    last: tuple[Any, Any] = (None, None)
    async with asyncio.timeout(timeout):
        while True:
            before = sandbox_request_counts(sb)
            status, text = await d.get("/metrics")
            assert status == 200
            samples = metric_samples(text)
            if before == sandbox_request_counts(sb) == metric_request_counts(samples):
                return samples
            last = (before, metric_request_counts(samples))
            await asyncio.sleep(0.05)
    raise AssertionError(f"metrics never matched the sandbox's request log: {last}")  # pragma: no cover


def ts(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


async def test_daemon_runs_on_schedule_keeps_credentials_alive_and_stops_on_sigterm(tmp_path: Path) -> None:
    options = SandboxOptions(employees=120, seed=5, port=0, whosoff_token_lifetime=3.0)
    async with run_sandbox(options) as sb:
        config = write_config(tmp_path / "syncd.toml", sb, sqlite_url(tmp_path), base=DAEMON)
        d = await Daemon(config, "run").start()
        try:
            await d.wait_event("run.finished", timeout=60, count=3)
            # a renewal by the keep-alive job while no cycle ran
            await d.wait_event("keepalive.renewed", timeout=15, vendor="whosoff", idle=True)
            samples = await consistent_scrape(d, sb)

            finished = d.named("run.finished")
            assert len(finished) >= 3 and all(e["result"] == "success" for e in finished), d.tail()
            runs = {
                s.labels["result"]: s.value for s in samples["syncd_runs"] if s.name == "syncd_runs_total"
            }
            # a cycle may have finished between the log read and the scrape, never the other way
            assert runs.get("success", 0) >= len(finished)

            # no vendor call failed for authentication
            assert sb.request_log.count(vendor="whosoff", code="TOK004") == 0
            assert not [e for e in sb.request_log if str(e["code"] or "").startswith("AUTH")]
            assert sb.request_log.count(vendor="infinityhr", code="InvalidSessionException") == 0

            # renewals counted by syncd == authentication requests the sandbox answered
            renewals = Counter[str]()
            for s in samples["syncd_credential_renewals"]:
                if s.name == "syncd_credential_renewals_total":
                    renewals[s.labels["vendor"]] += int(s.value)
            assert renewals["whosoff"] == sb.request_log.count(
                vendor="whosoff", path_contains="/authenticate/"
            )
            assert renewals["whosoff"] >= 3

            # the sandbox saw a token renewal that fell outside every cycle (renewed while idle)
            windows = list(
                zip((ts(e) for e in d.named("run.started")), (ts(e) for e in finished), strict=False)
            )
            renew_times = [
                e["ts"] for e in sb.request_log.matching(vendor="whosoff", path_contains="with-access-token")
            ]
            idle = [t for t in renew_times if not any(a - 0.05 <= t <= b + 0.05 for a, b in windows)]
            assert idle, (renew_times, windows)

            # the gauges the issue lists are there
            for name in ("syncd_last_success_timestamp_seconds", "syncd_lease_held", "syncd_held_plans",
                         "syncd_quarantine_records", "syncd_operations"):  # fmt: skip
                assert name in samples, name
            assert [s.value for s in samples["syncd_lease_held"]] == [1.0]
            assert samples["syncd_last_success_timestamp_seconds"][0].value > time.time() - 30

            status, body = await d.get("/healthz")
            assert status == 200
            status, body = await d.get("/readyz")
            assert status == 200, body

            started = time.monotonic()
            d.signal(signal.SIGTERM)
            assert await d.wait(timeout=10) == 0
            assert time.monotonic() - started < 10
            assert d.named("service.stopped")
        finally:
            await d.stop()


async def test_sd_notify_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    address = f"@syncd-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:])
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    messages: list[dict[str, str]] = []

    async def receive_until(key: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not any(key in m for m in messages):
                data = await loop.sock_recv(sock, 4096)
                messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    async with run_sandbox(SandboxOptions(employees=20, seed=2, port=0)) as sb:
        config = write_config(
            tmp_path / "syncd.toml", sb, sqlite_url(tmp_path), base=DAEMON, sync={"schedule": "1h"}
        )
        env = base_env(NOTIFY_SOCKET=address, WATCHDOG_USEC="600000")
        d = await Daemon(config, env=env).start()  # bare `syncd` is the daemon
        try:
            await receive_until("READY", timeout=30)
            await receive_until("WATCHDOG", timeout=5)
            ready = next(m for m in messages if "READY" in m)
            assert ready["READY"] == "1" and ready["MAINPID"] == str(d.pid)
            assert "STATUS" in ready
            d.signal(signal.SIGTERM)
            await receive_until("STOPPING", timeout=10)
            assert await d.wait(timeout=10) == 0
        finally:
            sock.close()
            await d.stop()
    watchdogs = [m for m in messages if m.get("WATCHDOG") == "1"]
    assert watchdogs, messages


async def test_held_plans_gauge_is_loaded_from_the_database_at_start_up(tmp_path: Path) -> None:
    """Issue 13 hole 10: a plan held before the daemon started is counted before its first cycle ends."""
    from tests.support.config import COMMAND
    from tests.support.process import syncd_command

    async with run_sandbox(SandboxOptions(employees=40, seed=5, port=0)) as sb:
        once = write_config(tmp_path / "once.toml", sb, sqlite_url(tmp_path), base=COMMAND)
        assert (await syncd_command("--config", str(once), "--run-once"))[0] == 0
        for e in [e for e in sb.company.employee_list() if e.status == "Active"][:10]:
            sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
        code, out, err = await syncd_command("--config", str(once), "--run-once")
        assert code == 3, (out, err)

        sb.faults["infinityhr"].update({"hang_rate": 1.0, "hang_seconds": 30.0})  # the first cycle stalls
        config = write_config(tmp_path / "syncd.toml", sb, sqlite_url(tmp_path), base=DAEMON)
        d = await Daemon(config, "run").start()
        try:
            await d.wait_event("run.started", timeout=30)
            status, text = await d.get("/metrics")
            assert status == 200
            assert [s.value for s in metric_samples(text)["syncd_held_plans"]] == [1.0], d.tail()
        finally:
            await d.stop()
