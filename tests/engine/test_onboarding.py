"""Onboarding onto a populated WORKBOX (issue 16): the sandbox's tenant made by hand, its mapping
forms downloaded, filled by ``syncd keys fill`` and uploaded; then the first sync adopts the mapped
entities: the exact directory, no duplicate member, no rejected operation."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from openpyxl import load_workbook

from syncd.db.engine import create_engine, session_factory, upgrade
from syncd.engine import collisions
from syncd.engine.dispatch import ApplyResult, Failure
from syncd.engine.plan import Op
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.states import Action, OpState
from tests.support.config import COMMAND, write_config
from tests.support.oracle import expected_directory
from tests.support.process import syncd_command
from tests.support.workbox import workbox_requests, workbox_state

KINDS = ("job-grade", "job-position", "dept", "user")


async def _map(sb: Sandbox, cfg: Path, tmp_path: Path, kind: str, *, leave_out: int = 0) -> str:
    """Download the kind's form, fill it with ``syncd keys fill``, blank the key of the first
    ``leave_out`` filled rows (an admin who skipped them) and upload it; the fill's report."""
    form = tmp_path / f"{kind}.xlsx"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sb.control_url}/workbox/mapping-form", params={"kind": kind}) as r:
            assert r.status == 200
            form.write_bytes(await r.read())
        code, out, err = await syncd_command("--config", str(cfg), "keys", "fill", str(form), "--kind", kind)
        assert code == 0, err
        filled = tmp_path / f"{kind}-filled.xlsx"
        if leave_out:
            book = load_workbook(filled)
            sheet = book.worksheets[0]
            rows = [row for row in sheet.iter_rows(min_row=4) if row[-1].value][:leave_out]
            for row in rows:
                row[-1].value = None
            book.save(filled)
        async with http.post(
            f"{sb.control_url}/workbox/mapping-form", params={"kind": kind}, data=filled.read_bytes()
        ) as r:
            assert r.status == 200, await r.text()
    return out


async def test_keys_fill_upload_and_first_sync_adopt_the_hand_made_tenant(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=60, seed=6, port=0, prepopulated=25)) as sb:
        cfg = write_config(
            tmp_path / "syncd.toml", sb, f"sqlite+aiosqlite:///{tmp_path / 's.db'}", base=COMMAND
        )
        reports = {}
        async with aiohttp.ClientSession() as http:
            for kind in KINDS:
                form = tmp_path / f"{kind}.xlsx"
                async with http.get(f"{sb.control_url}/workbox/mapping-form", params={"kind": kind}) as r:
                    assert r.status == 200
                    form.write_bytes(await r.read())
                code, out, err = await syncd_command(
                    "--config", str(cfg), "keys", "fill", str(form), "--kind", kind
                )
                assert code == 0, err
                reports[kind] = out
                filled = tmp_path / f"{kind}-filled.xlsx"
                async with http.post(
                    f"{sb.control_url}/workbox/mapping-form", params={"kind": kind}, data=filled.read_bytes()
                ) as r:
                    assert r.status == 200, await r.text()
        assert "matched: 25 rows" in reports["user"] and "unmatched: 3 rows" in reports["user"], reports[
            "user"
        ]
        assert "contractor1@hand.example" in reports["user"]
        assert workbox_requests(sb) == 0  # filling sent nothing to WORKBOX

        code, out, err = await syncd_command("--config", str(cfg), "--run-once")
        assert code == 0, (out, err)
        state = workbox_state(sb)
        keyed = {k: v for k, v in state.items() if not k[1].startswith("~")}
        assert keyed == expected_directory(sb.company)
        emails = [b["emailAddr"].lower() for (kind, _), b in state.items() if kind == "user"]
        assert len(emails) == len(set(emails))  # no duplicate member
        assert sorted(k for (kind, k) in state if k.startswith("~")) == [
            "~hand-user-0026",
            "~hand-user-0027",
            "~hand-user-0028",
        ]  # the contractors HR does not know stay as they are: never deleted, never guessed
        assert " 0 failed" in out, out
        # each mapped entity was created by syncd's plan, answered "exists" and followed by an update
        # with the desired body: adopted, one each (the hand-made entities of every kind)
        mapped = sum(1 for r in reports.values() for line in r.splitlines() if line.startswith("matched:"))
        assert mapped == len(KINDS) and "objects adopted" in out and "Onboarding" in out, out


async def test_a_create_colliding_with_an_unmapped_member_is_quarantined_then_adopted_once_mapped(
    tmp_path: Path,
) -> None:
    async with run_sandbox(SandboxOptions(employees=60, seed=6, port=0, prepopulated=25)) as sb:
        cfg = write_config(
            tmp_path / "syncd.toml", sb, f"sqlite+aiosqlite:///{tmp_path / 's.db'}", base=COMMAND
        )
        code, out, err = await syncd_command("--config", str(cfg), "plan")
        assert code == 0 and "First sync:" in out and "keys export" in out, (out, err)  # nothing mapped yet
        for kind in KINDS:
            await _map(sb, cfg, tmp_path, kind, leave_out=5 if kind == "user" else 0)
        code, out, err = await syncd_command("--config", str(cfg), "plan")
        assert code == 0 and "of which 49 are expected to adopt" in out, out  # what keys fill keyed

        code, out, err = await syncd_command("--config", str(cfg), "--run-once")
        assert code == 0, (out, err)  # a collision is quarantined, not a failure
        assert " 0 failed" in out and "5 members collided" in out, out
        code, quarantine, err = await syncd_command("--config", str(cfg), "quarantine")
        assert quarantine.count("unmapped_in_workbox") == 5, quarantine
        assert "keys export --kind user" in quarantine and "reconcile --kind user" in quarantine
        lines = quarantine.splitlines()  # one line per record, never wrapped: its commands paste whole
        assert len(lines) == 5 and all(
            f"`syncd --config {cfg} reconcile --kind user`" in line for line in lines
        )
        state = workbox_state(sb)
        emails = [b["emailAddr"].lower() for (kind, _), b in state.items() if kind == "user"]
        assert len(emails) == len(set(emails))  # no duplicate member
        held = {k for (kind, k) in state if kind == "user" and k.startswith("~hand-user-00")} - {
            "~hand-user-0026", "~hand-user-0027", "~hand-user-0028"
        }  # fmt: skip
        assert len(held) == 5  # the 5 left unmapped are still the hand-made members

        before = workbox_requests(sb, code="E902")
        code, out, err = await syncd_command("--config", str(cfg), "--run-once")
        assert code == 0 and "no changes" in out, out  # held back: not retried every cycle
        assert workbox_requests(sb, code="E902") == before
        code, quarantine, _ = await syncd_command("--config", str(cfg), "quarantine")
        assert quarantine.count("unmapped_in_workbox") == 5, quarantine

        await _map(sb, cfg, tmp_path, "user")  # the admin maps the 5
        code, out, err = await syncd_command("--config", str(cfg), "reconcile", "--kind", "user")
        assert code == 0 and " 0 failed" in out, (out, err)
        state = workbox_state(sb)
        keyed = {k: v for k, v in state.items() if not k[1].startswith("~")}
        want = expected_directory(sb.company)
        assert set(keyed) ^ set(want) == set() and [k for k in want if keyed[k] != want[k]] == [], out
        code, quarantine, _ = await syncd_command("--config", str(cfg), "quarantine")
        assert "unmapped_in_workbox" not in quarantine, quarantine


async def test_adopt_mode_sends_a_create_for_everything_and_counts_adopted_created_collided(
    tmp_path: Path,
) -> None:
    async with run_sandbox(SandboxOptions(employees=40, seed=9, port=0, prepopulated=6)) as sb:
        cfg = write_config(
            tmp_path / "syncd.toml", sb, f"sqlite+aiosqlite:///{tmp_path / 's.db'}", base=COMMAND,
            sync={"adopt": True, "reassert_days": 0},
        )  # fmt: skip
        keyed = 0
        for kind in KINDS:
            report = await _map(sb, cfg, tmp_path, kind, leave_out=1 if kind == "user" else 0)
            keyed += int(report.split("matched: ")[1].split()[0]) - (1 if kind == "user" else 0)
        code, out, err = await syncd_command("--config", str(cfg), "--run-once")
        assert code == 0, (out, err)
        desired = len(expected_directory(sb.company))
        adopted, created = f"sync.adopt: {keyed} adopted", f"{desired - keyed - 1} created, 1 collided"
        assert adopted in out and created in out and "1 member collided" in out, out

        # with a ledger: a create for every entity all the same (never a delete), each one adopted
        before = workbox_requests(sb, method="DELETE")
        code, out, err = await syncd_command("--config", str(cfg), "--run-once")
        assert code == 0, (out, err)
        assert f"sync.adopt: {desired - 1} adopted" in out and "0 created, 0 collided" in out, out
        assert "objects adopted" not in out  # no warning of a lost ledger: adopt mode expects it
        assert "set sync.adopt = false" in out and workbox_requests(sb, method="DELETE") == before


async def test_an_address_another_syncd_member_holds_is_a_failure_not_a_collision(db_url: str) -> None:
    """Review of issue 16: an E902 for an address the ledger gives another member was settled as a
    collision (not quarantined, not counted failed) while the run said "quarantined as
    unmapped_in_workbox"."""
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        taken = Failure(1, "user", "Y", Action.CREATE, "E902", "email already exists")
        applied = ApplyResult(collided=[taken])
        applied.outcomes[("user", Action.CREATE, OpState.COLLIDED)] += 1
        ops = [Op("user", "Y", Action.CREATE, {"emailAddr": "a@example.com"}, seq=1)]
        ledger = {("user", "X"): {"emailAddr": "A@example.com"}}
        rejects, changed = await collisions.settle(sessions, {}, [], applied, ops, ledger)
        assert (rejects, changed) == ([], False)
        assert applied.collided == []
        assert [(f.key, f.code) for f in applied.failed] == [("Y", "E902")]
        assert "member X" in applied.failed[0].message
        assert applied.outcomes_of(Action.CREATE) == {OpState.COLLIDED: 0, OpState.FAILED: 1}
    finally:
        await engine.dispose()
