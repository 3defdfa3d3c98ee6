"""Operator output shows source values literally (issue 13, hole 9).

A source value is data, never markup or terminal control: ``[/x]Kim`` must not crash rich,
``[link=…]`` must not become a hyperlink, and an ESC byte or a newline in a WhosOff ``user_id`` must
not reach the terminal raw.
"""

from __future__ import annotations

from pathlib import Path

from syncd.sandbox import SandboxOptions, run_sandbox
from tests.support.config import COMMAND, write_config
from tests.support.process import syncd_command as syncd

BAD_CLOSE = "[/x]Kim"
LINK = "[link=https://evil.example/]Click"
HOSTILE_ID = "\x1b[2J\nsyncd: all good"


def _stdout_ok(out: str) -> None:
    assert "\x1b" not in out, repr(out)
    assert "Traceback" not in out


async def test_plan_quarantine_and_runs_show_source_values_literally(db_url: str, tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=30, seed=5, port=0)) as sb:
        cfg = str(write_config(tmp_path / "syncd.toml", sb, db_url, base=COMMAND, sync={"max_deletes": 1}))
        code, out, err = await syncd("--config", cfg, "--run-once")
        assert code == 0, (out, err)

        active = [e for e in sb.company.employee_list() if e.status == "Active"]
        sb.mutate("rename", employee_id=active[0].employee_id, first_name=BAD_CLOSE)
        sb.mutate("rename", employee_id=active[1].employee_id, first_name=LINK)
        for e in active[2:4]:  # two deletes with max_deletes = 1: the plan is held for review
            sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
        user = next(iter(sb.company.whosoff_users.values()))
        user.user_id = HOSTILE_ID  # type: ignore[assignment]  # what a hostile WhosOff could serve

        code, out, err = await syncd("--config", cfg, "plan")
        assert code == 0, (out, err)
        _stdout_ok(out)
        assert "HELD" in out
        assert BAD_CLOSE in out
        assert LINK in out  # the markup text itself: not a hyperlink, not swallowed
        assert "\\x1b[2J\\nsyncd: all good" in out

        code, out, err = await syncd("--config", cfg, "--run-once")
        assert code == 3, (out, err)
        _stdout_ok(out)

        code, out, err = await syncd("--config", cfg, "quarantine")
        assert code == 0, (out, err)
        _stdout_ok(out)
        assert "\\x1b[2J\\nsyncd: all good" in out
        assert "\nsyncd: all good" not in out  # the newline did not start a forged line

        code, out, err = await syncd("--config", cfg, "runs")
        assert code == 0, (out, err)
        _stdout_ok(out)
        assert "held plan" in out
