"""Drift repair without a read API (issue 16): WORKBOX changed by hand (members deleted, departments
renamed in its admin screens) is exact again within ``reassert_days`` worth of cycles, and at once by
``syncd reconcile``.  Whole ``syncd`` processes against the sandbox, its WORKBOX edited through the
control API as an admin would."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import structlog.testing

from syncd.config import SyncSettings
from syncd.db.engine import create_engine, session_factory, upgrade
from syncd.db.models import LedgerEntry
from syncd.engine import reassert
from syncd.engine.dispatch import ApplyResult, Failure
from syncd.engine.merge import Desired
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.states import Action
from tests.support.config import COMMAND, write_config
from tests.support.oracle import expected_directory
from tests.support.process import syncd_command
from tests.support.workbox import workbox_requests, workbox_state

#: a day a cycle, every entity within 5 days: 5 cycles cover the ledger (ceil(N / 5) a cycle)
DRIFT = {"schedule": "24h", "reassert_days": 5}


async def _by_hand(sb: Sandbox, **change: Any) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sb.control_url}/workbox/by-hand", json=change) as r,
    ):
        assert r.status == 200, await r.text()
        return list((await r.json())["keys"])


async def _drift(sb: Sandbox) -> tuple[list[str], list[str]]:
    """10 members deleted and 5 departments renamed in WORKBOX by hand."""
    users = await _by_hand(sb, action="delete", kind="user", count=10)
    depts = await _by_hand(sb, action="edit", kind="dept", count=5, fields={"name": "Renamed by hand"})
    return users, depts


def _asserted(db: Path) -> list[str | None]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT asserted_at FROM ledger")]


async def test_drift_made_by_hand_is_repaired_within_reassert_days_of_cycles(
    tmp_path: Path, db_url: str
) -> None:
    async with run_sandbox(SandboxOptions(employees=60, seed=16, port=0)) as sb:
        cfg = str(write_config(tmp_path / "syncd.toml", sb, db_url, base=COMMAND, sync=DRIFT))
        code, out, err = await syncd_command("--config", cfg, "--run-once")
        assert code == 0 and workbox_state(sb) == expected_directory(sb.company), (out, err)
        entities = len(workbox_state(sb))
        if db_url.startswith("sqlite"):
            assert all(_asserted(Path(db_url.split(":///")[1])))  # every push is an assertion

        users, depts = await _drift(sb)
        assert workbox_state(sb) != expected_directory(sb.company)
        share = math.ceil(entities / DRIFT["reassert_days"])
        repaired = 0
        for cycle in range(1, 6):
            before = workbox_requests(sb)
            code, out, err = await syncd_command("--config", cfg, "--run-once")
            assert code == 0 and "no changes" in out, (cycle, out, err)
            told, deleted = _told(out)
            assert told == share, (cycle, out)  # the share asserted longest ago: all within 5 cycles
            assert workbox_requests(sb) - before == told + deleted  # a PUT each, a POST per deletion
            repaired += deleted
        assert workbox_state(sb) == expected_directory(sb.company)
        assert repaired == len(users) == 10
        for key in depts:  # the renamed departments carry their HR names again
            assert workbox_state(sb)[("dept", key)]["name"] != "Renamed by hand"


def _told(out: str) -> tuple[int, int]:
    """(re-asserted, of them created again) as a run's summary line says."""
    told = re.search(r"re-asserted (\d+) ", out)
    deleted = re.search(r"drift repaired: user (\d+) ", out)
    return int(told.group(1)) if told else 0, int(deleted.group(1)) if deleted else 0


async def test_reconcile_repairs_drift_in_one_command_and_dry_run_sends_nothing(
    tmp_path: Path, db_url: str
) -> None:
    async with run_sandbox(SandboxOptions(employees=60, seed=17, port=0)) as sb:
        cfg = str(
            write_config(
                tmp_path / "syncd.toml", sb, db_url, base=COMMAND,
                sync={"reassert_days": 0},  # no re-assertion by the cycles: only reconcile repairs
            )
        )  # fmt: skip
        code, out, err = await syncd_command("--config", cfg, "--run-once")
        assert code == 0, (out, err)
        entities = len(workbox_state(sb))
        await _drift(sb)

        before = workbox_requests(sb)
        code, out, err = await syncd_command("--config", cfg, "reconcile", "--dry-run")
        assert code == 0, (out, err)
        assert workbox_requests(sb) == before and "Re-assertion" in out, out

        code, out, err = await syncd_command("--config", cfg, "--run-once")
        assert code == 0 and workbox_state(sb) != expected_directory(sb.company)  # invisible to a sync

        code, out, err = await syncd_command("--config", cfg, "reconcile")
        assert code == 0, (out, err)
        assert workbox_state(sb) == expected_directory(sb.company)
        assert f"re-asserted {entities} ({entities} done; drift repaired: user 10" in out, out
        assert workbox_requests(sb) - before == entities + 10  # a PUT each, a POST per deleted member
        events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert any(e.get("event") == "apply.progress" for e in events)  # progress while it runs

        code, out, err = await syncd_command("--config", cfg, "reconcile", "--kind", "dept")
        assert code == 0 and "re-asserted" in out and "drift repaired" not in out, out


def test_a_cycles_share_is_the_ledger_over_reassert_days_of_cycles() -> None:
    assert reassert.cycles_per_day("15m") == 96
    assert reassert.cycles_per_day("*/30 * * * *") == 48
    assert reassert.cycles_per_day("0 2 * * 1-5") == 5 / 7
    assert reassert.share(100_000, 7, 96) == math.ceil(100_000 / 672) == 149
    assert reassert.share(10, 7, 96) == 1  # rounded up: every entity within the period
    assert reassert.share(100_000, 0, 96) == 0  # 0 turns it off
    assert reassert.share(3, 0.001, 96) == 3  # never more than the ledger


async def test_a_refused_reassertion_does_not_take_every_cycles_share(db_url: str) -> None:
    """Review of issue 16: an entity whose re-assertion WORKBOX keeps refusing stayed the one asserted
    longest ago and took the cycle's whole share, every cycle; nothing else was re-asserted again."""
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        ledger = {("user", f"u{n}"): {"email": f"u{n}@example.com"} for n in range(3)}
        async with sessions.begin() as db:
            for (kind, key), body in ledger.items():
                db.add(LedgerEntry(kind=kind, external_key=key, body=body, body_hash=key, pushed_at=old,
                                   asserted_at=old + dt.timedelta(hours=int(key[1:]))))  # fmt: skip
        settings = SyncSettings(schedule="24h", reassert_days=3)  # a share of 1 a cycle
        desired = Desired({"user": {k: b for (_, k), b in ledger.items()}}, [], set())
        chosen = []
        for _ in range(3):
            ops = await reassert.choose(sessions, settings, [], ledger, None, desired)
            assert len(ops) == 1
            chosen.append(ops[0].key)
            refused = ApplyResult(
                failed=[Failure(ops[0].seq, "user", ops[0].key, Action.REASSERT, "E904", "no")]
            )
            await reassert.after_apply(sessions, settings, refused, ledger)
        assert chosen == ["u0", "u1", "u2"], chosen
    finally:
        await engine.dispose()


async def test_nothing_the_sources_no_longer_want_is_reasserted(tmp_path: Path, db_url: str) -> None:
    """Review of issue 16: under sync.adopt the plan is made without the ledger, so a member who left
    was not "planned" and `reconcile` re-sent (and would have re-created) them; a frozen (quarantined)
    member is not re-asserted either."""
    async with run_sandbox(SandboxOptions(employees=40, seed=21, port=0)) as sb:
        cfg = write_config(tmp_path / "syncd.toml", sb, db_url, base=COMMAND, sync={"reassert_days": 0})
        code, out, err = await syncd_command("--config", str(cfg), "--run-once")
        assert code == 0, (out, err)
        active = [e for e in sb.company.employee_list() if e.status == "Active"]
        sb.mutate("terminate", employee_id=active[0].employee_id, termination_date="2020-01-01")
        gone = set(workbox_state(sb)) - set(expected_directory(sb.company))
        assert len(gone) == 1 and next(iter(gone))[0] == "user", gone
        write_config(cfg, sb, db_url, base=COMMAND, sync={"reassert_days": 0, "adopt": True})
        ((_, key),) = gone
        before = workbox_requests(sb, path_contains=key)
        code, out, err = await syncd_command("--config", str(cfg), "reconcile")
        assert code == 0, (out, err)
        assert workbox_requests(sb, path_contains=key) == before, "the departed member was re-asserted"
        assert workbox_requests(sb, method="PUT") > 0  # the others were


async def test_a_ledger_behind_its_reassert_days_is_said(db_url: str) -> None:
    """Review of issue 16: the share follows sync.schedule, not the cycles that ran (a timer on another
    calendar, skipped cycles): the 7-day promise could fail silently.  Beyond reassert_days + 1 day
    a warning says so and names reconcile."""
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        now = dt.datetime.now(dt.UTC)
        async with sessions.begin() as db:
            for key, age in (("fresh", 1), ("stale", 9)):
                db.add(LedgerEntry(kind="user", external_key=key, body={}, body_hash=key, pushed_at=now,
                                   asserted_at=now - dt.timedelta(days=age)))  # fmt: skip
        settings = SyncSettings(schedule="15m", reassert_days=7)
        with structlog.testing.capture_logs() as logs:
            await reassert.after_apply(sessions, settings, None, {})
        behind = [e for e in logs if e["event"] == "reassert.behind"]
        assert len(behind) == 1 and behind[0]["lag_days"] == 9.0, logs
        assert "reconcile" in behind[0]["why"] and "15m" in behind[0]["why"]
        with structlog.testing.capture_logs() as logs:
            await reassert.after_apply(sessions, SyncSettings(schedule="15m", reassert_days=9), None, {})
        assert not [e for e in logs if e["event"] == "reassert.behind"]  # 9 days is within 9 + 1
    finally:
        await engine.dispose()
