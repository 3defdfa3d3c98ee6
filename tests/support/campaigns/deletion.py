"""Deletion integrity campaign (issue 13): every way of deleting someone HR still wants, run at size.

* salami     — each cycle terminates just under the per-plan limit, for ``cycles`` cycles with the
               default limits: at most ``max_deletes`` members deleted in the window, then held.
* stale      — a held plan of 60 terminations; HR reinstates the 60; two clean cycles; the old plan is
               approved (refused: superseded), then a fresh held plan approved after reinstatement.
* replay     — WORKBOX answers 503 while 5 terminations are applied; HR reinstates them; WORKBOX
               comes back: zero deletes reach it.  Then 200 pending deletes written into the journal
               by hand: zero sent.
* clock      — the date set back a year, then forward ten years: nothing created or deleted.
* paging     — a purge while InfinityHR's pages are read, a page 45 records short, a record repeated
               across pages: the source is stale, nobody deleted.

Each case counts the WORKBOX DELETEs of people HR wants (target 0) from the sandbox's request log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.db.models import Operation, SyncRun, utcnow
from syncd.engine.approval import ApprovalRefused
from syncd.engine.context import SyncContext
from syncd.engine.cycle import approve, run_cycle
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from tests.support.campaigns.common import database
from tests.support.config import CAMPAIGN, settings_for

#: the default deletion limits (the CAMPAIGN layer lifts them; this campaign is about them)
DEFAULTS = {"max_deletes": 50, "max_delete_ratio": 0.1}


@dataclass
class Case:
    name: str
    size: str
    result: str
    target: str
    met: bool


@dataclass
class DeletionResult:
    cases: list[Case] = field(default_factory=list)

    @property
    def all_met(self) -> bool:
        return all(c.met for c in self.cases)


def _deletes(sb: Sandbox) -> int:
    """WORKBOX DELETEs that deleted (answered 2xx; a 503 deleted nobody)."""
    return sum(
        1 for e in sb.request_log.matching("workbox", "DELETE", None, None, None, None) if e["status"] < 300
    )


def _active(sb: Sandbox) -> list[Any]:
    return [e for e in sb.company.employee_list() if e.status == "Active"]


def _terminate(sb: Sandbox, people: list[Any], when: str = "2020-01-01") -> None:
    for e in people:
        sb.mutate("terminate", employee_id=e.employee_id, termination_date=when)


def _reinstate(sb: Sandbox, people: list[Any]) -> None:
    for e in people:
        sb.mutate("set_status", employee_id=e.employee_id, status="Active")


@contextlib.asynccontextmanager
async def _world(
    db: str, workdir: Path, employees: int, seed: int
) -> AsyncIterator[tuple[Sandbox, SyncContext]]:
    """A sandbox and a context with the default deletion limits, on a fresh database."""
    options = SandboxOptions(employees=employees, seed=seed, port=0)
    async with database(db, workdir) as url, run_sandbox(options) as sb:  # noqa: SIM117 (sb names the url)
        async with SyncContext.open(settings_for(sb, url, base=CAMPAIGN, sync=DEFAULTS)) as ctx:
            yield sb, ctx


async def _salami(db: str, workdir: Path, seed: int, cycles: int) -> Case:
    async with _world(db, workdir, 475, seed) as (sb, ctx):
        assert (await run_cycle(ctx)).exit_code == 0
        members = len(_active(sb))
        first_held, held_after = None, 0
        for n in range(1, cycles + 1):
            wave = _active(sb)[: max(1, min(50, len(_active(sb)) // 10) - 1)]
            _terminate(sb, wave)
            report = await run_cycle(ctx)
            if report.result == "held":
                first_held = first_held or n
                held_after += 1
        deleted = _deletes(sb)
    met = (
        deleted <= int(DEFAULTS["max_deletes"])
        and first_held is not None
        and held_after == cycles - first_held + 1
    )
    return Case(
        "salami drain", f"{members} members, {cycles} cycles",
        f"{deleted} deleted; held from cycle {first_held} on ({held_after} held cycles)",
        f"≤ {DEFAULTS['max_deletes']} deleted, then held", met,
    )  # fmt: skip


async def _stale(db: str, workdir: Path, seed: int) -> Case:
    async with _world(db, workdir, 600, seed) as (sb, ctx):
        assert (await run_cycle(ctx)).exit_code == 0
        wave = _active(sb)[:60]
        _terminate(sb, wave)
        held = await run_cycle(ctx)
        _reinstate(sb, wave)
        clean = [await run_cycle(ctx) for _ in range(2)]
        try:
            await approve(ctx, held.plan_id or "", "campaign")
            refused = "applied"
        except ApprovalRefused as exc:
            refused = "refused (superseded)" if "superseded" in str(exc) else f"refused: {exc}"
        _terminate(sb, wave)
        again = await run_cycle(ctx)
        _reinstate(sb, wave)
        fresh = await approve(ctx, again.plan_id or "", "campaign")
        deleted = _deletes(sb)
    met = (held.result == "held" and all(c.exit_code == 0 for c in clean) and refused.startswith("refused (")
           and again.result == "held" and fresh.exit_code == 0 and deleted == 0)  # fmt: skip
    return Case(
        "stale approval", "60 held terminations, all reinstated",
        f"old plan {refused}; fresh plan approved after reinstatement: {fresh.dropped or 'nothing dropped'}; "
        f"{deleted} deleted",
        "0 deleted", met,
    )  # fmt: skip


async def _replay(db: str, workdir: Path, seed: int) -> Case:
    async with _world(db, workdir, 200, seed) as (sb, ctx):
        assert (await run_cycle(ctx)).exit_code == 0
        wave = _active(sb)[:5]
        _terminate(sb, wave)
        sb.faults["workbox"].update({"error_rate": 1.0, "error_status": 503})
        pending = await run_cycle(ctx)
        sb.faults["workbox"].update({"error_rate": 0.0, "error_status": None})
        _reinstate(sb, wave)
        after = await run_cycle(ctx)
        keys = [e.employee_id for e in _active(sb)]
        now = utcnow()
        async with ctx.sessions.begin() as s:
            run = SyncRun(trigger="campaign", started_at=now, result="failed", holder="campaign")
            s.add(run)
            await s.flush()
            s.add_all(_forged(run.id, i, keys[i % len(keys)], now) for i in range(200))
        forged = await run_cycle(ctx)
        deleted = _deletes(sb)
    left = pending.applied.pending if pending.applied else 0
    met = left == 5 and after.exit_code == 0 and forged.exit_code == 0 and deleted == 0
    return Case(
        "replay after 503 / forged journal", "5 pending deletes reinstated; 200 forged",
        f"{left} left pending by the 503; recovery: "
        f"{after.recovered.describe() if after.recovered else '-'}; forged: "
        f"{forged.recovered.superseded if forged.recovered else 0} superseded; {deleted} deleted",
        "0 deleted", met,
    )  # fmt: skip


async def _paging(db: str, workdir: Path, seed: int) -> Case:
    async with _world(db, workdir, 200, seed) as (sb, ctx):
        assert (await run_cycle(ctx)).exit_code == 0
        results = []
        for faults in ({"purge_after_page": 1}, {"page_short": 3, "page_short_by": 45}, {"page_repeat": 2}):
            sb.faults["infinityhr"].update(faults)
            report = await run_cycle(ctx)
            results.append(report.result)
            sb.faults["infinityhr"].update({k: 0 for k in faults})
        deleted = _deletes(sb)
    met = results == ["stale"] * 3 and deleted == 0
    return Case(
        "inconsistent pages", "purge while paging, a page 45 short, a repeated record",
        f"results {', '.join(results)}; {deleted} deleted", "stale, 0 deleted", met,
    )  # fmt: skip


def _forged(run_id: int, seq: int, key: str, now: dt.datetime) -> Operation:
    """A pending delete that no plan made, as if written into the journal by hand."""
    return Operation(
        run_id=run_id, plan_id=None, seq=seq, level=0, kind="user", external_key=key, action="delete",
        body=None, depends_on=[], state="pending", created_at=now, updated_at=now,
    )  # fmt: skip


async def _clock(db: str, workdir: Path, seed: int) -> Case:
    today = dt.datetime.now(dt.UTC).date()
    async with _world(db, workdir, 200, seed) as (sb, ctx):
        assert (await run_cycle(ctx)).exit_code == 0
        _terminate(sb, _active(sb)[:10], (today - dt.timedelta(days=30)).isoformat())
        assert (await run_cycle(ctx)).exit_code == 0
        _terminate(sb, _active(sb)[:40], (today + dt.timedelta(days=30)).isoformat())
        assert (await run_cycle(ctx)).exit_code == 0
        deletes, creates = _deletes(sb), int(sb.request_log.count(vendor="workbox", method="POST"))
        back = await run_cycle(ctx, today=today - dt.timedelta(days=365))
        forward = await run_cycle(ctx, today=today + dt.timedelta(days=3650))
        moved = (_deletes(sb) - deletes) + (
            int(sb.request_log.count(vendor="workbox", method="POST")) - creates
        )
    met = back.result == "held" and forward.result == "held" and moved == 0
    return Case(
        "clock set back / forward", "10 left last month, 40 in notice",
        f"back a year: {back.result}; forward ten years: {forward.result}; {moved} created or deleted",
        "held, 0 changed", met,
    )  # fmt: skip


async def deletion_campaign(db: str, workdir: Path, *, seed: int, salami_cycles: int = 200) -> DeletionResult:
    workdir.mkdir(parents=True, exist_ok=True)
    result = DeletionResult()
    result.cases.append(await _salami(db, workdir, seed, salami_cycles))
    result.cases.append(await _stale(db, workdir, seed))
    result.cases.append(await _replay(db, workdir, seed))
    result.cases.append(await _clock(db, workdir, seed))
    result.cases.append(await _paging(db, workdir, seed))
    return result
