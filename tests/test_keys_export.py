"""``syncd keys export`` (onboarding onto a populated WORKBOX): the external key of every desired entity
beside what an admin recognises, from the current sources; nothing is sent."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook

from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.sandbox import SandboxOptions, run_sandbox
from tests.support.config import COMMAND, settings_for, write_config
from tests.support.process import syncd_command
from tests.support.workbox import workbox_requests

HOSTILE = '=HYPERLINK("https://evil.example")'


async def test_keys_export_writes_every_desired_entity_and_sends_nothing(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=60, seed=6, port=0)) as sb:
        emp = next(e for e in sb.company.employee_list() if e.status == "Active")
        sb.mutate("rename", employee_id=emp.employee_id, first_name=HOSTILE)
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        cfg = write_config(tmp_path / "syncd.toml", sb, url, base=COMMAND)
        async with SyncContext.open(settings_for(sb, url, base=COMMAND)) as ctx:
            desired = (await run_cycle(ctx, trigger="test", dry_run=True)).desired
        assert desired is not None
        code, out, err = await syncd_command(
            "--config", str(cfg), "keys", "export", "--out", str(tmp_path / "x")
        )
        assert code == 0, err
        assert workbox_requests(sb) == 0
        book = load_workbook(tmp_path / "x" / "syncd-keys.xlsx")
        assert book.sheetnames == ["dept", "user", "job-grade", "job-position"]
        for kind in book.sheetnames:
            rows = list(book[kind].iter_rows(values_only=True))
            assert rows[0][0] == "external key"
            assert {r[0] for r in rows[1:]} == set(desired[kind]), kind
            assert f"{kind}: {len(rows) - 1} rows" in out
        users = {r[0]: r for r in book["user"].iter_rows(min_row=2, values_only=True)}
        depts = {r[0]: r for r in book["dept"].iter_rows(min_row=2, values_only=True)}
        key, body = next(iter(desired["user"].items()))
        assert users[key][2] == body["emailAddr"] and users[key][4] == depts[body["deptExternalKey"]][1]
        assert all(r[4] for r in depts.values())  # every department has its full path
        hostile = [c for c in book["user"]["B"] if HOSTILE in str(c.value)]
        assert hostile and all(c.data_type == "s" for c in hostile)  # text, never a formula

        code, _, err = await syncd_command(
            "--config", str(cfg), "keys", "export", "--kind", "user", "--format", "csv",
            "--out", str(tmp_path / "c"),
        )  # fmt: skip
        assert code == 0, err
        with (tmp_path / "c" / "syncd-keys-user.csv").open(encoding="utf-8-sig") as fh:
            lines = list(csv.reader(fh))
        assert len(lines) == len(desired["user"]) + 1
        assert any(cell.startswith("'=HYPERLINK") for line in lines for cell in line)  # never a live formula
        assert not (tmp_path / "c" / "syncd-keys-dept.csv").exists()
