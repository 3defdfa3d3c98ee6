"""Onboarding onto a populated WORKBOX (issue 16): the sandbox's tenant made by hand, its mapping
forms downloaded, filled by ``syncd keys fill`` and uploaded; then the first sync adopts the mapped
entities: the exact directory, no duplicate member, no rejected operation."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from syncd.sandbox import SandboxOptions, run_sandbox
from tests.support.config import COMMAND, write_config
from tests.support.oracle import expected_directory
from tests.support.process import syncd_command
from tests.support.workbox import workbox_requests, workbox_state

KINDS = ("job-grade", "job-position", "dept", "user")


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
