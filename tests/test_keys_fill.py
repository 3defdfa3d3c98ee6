"""``syncd keys fill`` (onboarding): the console's mapping form, its layout found by its titles in
Korean or English, each row matched to the desired directory, nothing guessed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.onboarding.export import full_path
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from tests.support.config import COMMAND, settings_for, write_config
from tests.support.process import syncd_command
from tests.support.workbox import workbox_requests


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Path, dict[str, Any]]]:
    async with run_sandbox(SandboxOptions(employees=60, seed=6, port=0)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        cfg = write_config(tmp_path / "syncd.toml", sb, url, base=COMMAND)
        async with SyncContext.open(settings_for(sb, url, base=COMMAND)) as ctx:
            desired = (await run_cycle(ctx, trigger="test", dry_run=True)).desired
        assert desired is not None
        yield sb, cfg, desired


def _form(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "구성원"
    sheet.append(["조직 연동 외부키 매핑"])  # a title row, then a blank one: the header is found anyway
    sheet.append([])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


async def test_members_are_matched_by_email_and_the_rest_reported(
    world: tuple[Sandbox, Path, dict[str, Any]], tmp_path: Path
) -> None:
    sb, cfg, desired = world
    users = sorted(desired["user"].items())
    (k1, b1), (k2, b2), (_, b3) = users[0], users[1], users[2]
    form = _form(tmp_path / "form.xlsx", ["번호", "이름", "이메일", "부서", "외부키"], [
        [1, b1["name"], b1["emailAddr"].upper(), "", None],  # e-mail compared case-insensitively
        [2, b2["name"], b2["emailAddr"], "", None],
        [3, "Hand Made", "hand.made@acme.example", "", None],  # in WORKBOX, not in HR
        [4, b3["name"], b3["emailAddr"], "", "already-set"],
    ])  # fmt: skip
    code, out, err = await syncd_command("--config", str(cfg), "keys", "fill", str(form), "--kind", "user")
    assert code == 0, err
    layout = (
        "sheet '구성원', header row 3: name = column 2 ('이름'), email = column 3 ('이메일'), key = column 5"
    )
    assert f"columns used: {layout}" in out, out
    assert "matched: 2 rows" in out and "unmatched: 1 rows" in out and "row 6: hand.made@acme.example" in out
    assert "already keyed: 1 rows" in out
    # the row keyed by hand names no HR key: that person is still absent (created by the first sync)
    assert f"absent from WORKBOX: {len(users) - 2} user entities" in out
    filled = load_workbook(tmp_path / "form-filled.xlsx")["구성원"]
    assert [filled.cell(row=r, column=5).value for r in (4, 5, 6, 7)] == [k1, k2, None, "already-set"]
    assert workbox_requests(sb) == 0


async def test_departments_by_full_path_else_a_unique_name(
    world: tuple[Sandbox, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, cfg, desired = world
    depts = desired["dept"]
    key, body = sorted(depts.items())[-1]
    path = full_path(key, depts).replace(" / ", " > ")
    other_key, other = sorted(depts.items())[0]
    form = _form(tmp_path / "d.xlsx", ["Department name", "Path", "External key"], [
        [body["name"], path, None],
        [other["name"], "", None],
        ["Nowhere", "", None],
    ])  # fmt: skip
    code, _, err = await syncd_command(
        "--config", str(cfg), "keys", "fill", str(form), "--kind", "dept", "--out", str(tmp_path / "f.xlsx")
    )
    assert code == 0, err
    filled = load_workbook(tmp_path / "f.xlsx").active
    assert filled is not None
    assert [filled.cell(row=r, column=3).value for r in (4, 5, 6)] == [key, other_key, None]


async def test_a_form_without_a_needed_column_is_refused_naming_it(
    world: tuple[Sandbox, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, cfg, _ = world
    form = _form(tmp_path / "bad.xlsx", ["이름", "부서", "외부키"], [["Kim", "Sales", None]])
    code, out, err = await syncd_command("--config", str(cfg), "keys", "fill", str(form), "--kind", "user")
    assert code == 2, (out, err)
    assert "needs: key" in err and "email (e-mail / email" in err and "'외부키'" in err, err
    code, _, err = await syncd_command(
        "--config", str(cfg), "keys", "fill", str(tmp_path / "no.xlsx"), "--kind", "user"
    )
    assert code == 2 and "no such file" in err
