"""Leader lease: one applier among daemons and one-shot runs, takeover after SIGKILL, fencing."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.db import engine as dbe
from syncd.db.models import SyncRun
from syncd.engine.apply import Applier
from syncd.engine.journal import FencedOut
from syncd.sandbox import Faults, SandboxOptions, run_sandbox
from syncd.service.lease import DatabaseLease, FileLease, LeaderLease, lock_path, make_lease
from tests.support.config import DAEMON, write_config
from tests.support.oracle import expected_directory
from tests.support.process import Daemon

pytestmark = pytest.mark.slow

PERIOD = 3.0


def event_time(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


async def runs_by_holder(url: str) -> dict[str, list[SyncRun]]:
    engine = dbe.create_engine(url)
    try:
        async with dbe.session_factory(engine)() as db:
            rows = (await db.execute(sa.select(SyncRun).order_by(SyncRun.id))).scalars().all()
    finally:
        await engine.dispose()
    out: dict[str, list[SyncRun]] = {}
    for row in rows:
        out.setdefault(row.holder or "", []).append(row)
    return out


async def test_one_leader_applies_and_a_standby_takes_over_after_sigkill(db_url: str, tmp_path: Path) -> None:
    options = SandboxOptions(employees=250, seed=11, port=0, faults={"workbox": Faults(latency_ms=40)})
    async with run_sandbox(options) as sb:
        config = write_config(
            tmp_path / "syncd.toml",
            sb,
            db_url,
            base=DAEMON,
            sync={"lease_period": PERIOD},
            workbox={"max_concurrency": 4},
        )
        a = await Daemon(config).start()
        b = Daemon(config)
        try:
            await a.wait_event("service.ready", timeout=30, role="leader")
            await b.start()
            await b.wait_event("service.ready", timeout=30, role="standby")
            holder_a = a.named("service.ready")[0]["holder"]
            holder_b = b.named("service.ready")[0]["holder"]

            # kill the leader in the middle of its first apply
            await a.wait_for(lambda: sb.request_log.count(vendor="workbox") >= 40, 30, "A applying")
            await b.wait_event("sync.standby", timeout=10)
            a.signal(signal.SIGKILL)
            killed = time.time()
            assert await a.wait(timeout=10) == -signal.SIGKILL
            sent_by_a = sb.request_log.count(vendor="workbox")
            assert sent_by_a < 400  # really mid-apply

            acquired = event_time((await b.wait_event("lease.acquired", timeout=PERIOD * 4))[0])
            # A's lock died with it (flock / its PostgreSQL session); B polls every PERIOD/4
            assert acquired - killed < PERIOD, acquired - killed
            await b.wait_event("run.finished", timeout=60, result="success")
            assert min(event_time(e) for e in b.named("run.started")) > killed

            # B finished what A had started: WORKBOX holds exactly the directory
            state = {
                (k, key): body for k, objs in sb.workbox_state.to_json().items() for key, body in objs.items()
            }
            assert state == expected_directory(sb.company)

            # no interleaving: nothing reached WORKBOX between the kill and B's takeover, every run of A
            # started before the kill, every run of B after it
            gap = [
                e for e in sb.request_log if e["vendor"] == "workbox" and killed + 0.2 < e["ts"] < acquired
            ]
            assert gap == []
            runs = await runs_by_holder(db_url)
            assert set(runs) == {holder_a, holder_b}
            assert all(r.started_at.timestamp() < killed for r in runs[holder_a])
            assert all(r.started_at.timestamp() > killed for r in runs[holder_b])
            b.signal(signal.SIGTERM)
            assert await b.wait(timeout=10) == 0
        finally:
            await a.stop()
            await b.stop()


async def test_run_once_waits_for_the_lease_then_names_the_holder(db_url: str, tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=20, seed=4, port=0)) as sb:
        config = write_config(
            tmp_path / "syncd.toml",
            sb,
            db_url,
            base=DAEMON,
            sync={"schedule": "1h", "lease_wait": 1.5, "lease_period": PERIOD},
        )
        daemon = await Daemon(config).start()
        try:
            await daemon.wait_event("run.finished", timeout=30)
            holder = daemon.named("service.ready")[0]["holder"]
            once = await Daemon(config, "--run-once").start()
            started = time.monotonic()
            code = await once.wait(timeout=30)
            assert code == 1
            assert time.monotonic() - started >= 1.5
            assert any(f"leader lease: {holder}" in line for line in once.other), once.other
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait(timeout=10) == 0
            # with the daemon gone, the lease is free at once (released on SIGTERM)
            once = await Daemon(config, "--run-once").start()
            assert await once.wait(timeout=30) == 0
        finally:
            await daemon.stop()


async def test_an_applier_that_lost_the_lease_is_fenced(db_url: str) -> None:
    engine = dbe.create_engine(db_url)
    try:
        await dbe.upgrade(engine)
        assert isinstance(make_lease(db_url, engine, 1.0), FileLease if "sqlite" in db_url else DatabaseLease)
        if "sqlite" in db_url:
            first: LeaderLease = FileLease(engine, 1.0, lock_path(db_url), holder="host-a:1")
            second: LeaderLease = FileLease(engine, 1.0, lock_path(db_url), holder="host-b:2")
        else:
            first, second = DatabaseLease(engine, 1.0, "host-a:1"), DatabaseLease(engine, 1.0, "host-b:2")
        assert await first.try_acquire()
        token = first.token
        assert not await second.try_acquire()
        assert await second.current_holder() == first.holder
        applier = Applier(dbe.session_factory(engine), None, concurrency=1, fencing_token=first.token)  # type: ignore[arg-type]
        assert await applier.journal(1, "p", []) == []  # current token: allowed

        # the first holder loses its lock without knowing (its process or connection died)
        if isinstance(first, FileLease):
            await first.release()  # (a dead process's flock is gone the same way)
        else:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND granted AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
        async with asyncio.timeout(5):
            while not await second.try_acquire():
                await asyncio.sleep(0.1)
        assert second.token is not None and token is not None and second.token > token
        with pytest.raises(FencedOut):
            await applier.journal(1, "p", [])
        assert not await first.renew()
        assert await first.current_holder() == "host-b:2"
        await second.release()
    finally:
        await engine.dispose()


def test_lock_file_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    assert lock_path(f"sqlite+aiosqlite:///{tmp_path}/x/syncd.db") == tmp_path / "x" / "syncd.db.lock"
    assert lock_path("sqlite+aiosqlite:///:memory:") is None
