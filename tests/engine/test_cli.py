"""The engine's commands as a user runs them: subprocesses, exit codes, stdout/stderr."""

from __future__ import annotations

import json
from pathlib import Path

from syncd.sandbox import SandboxOptions, run_sandbox
from tests.support.config import COMMAND, LENIENT_DELETES, write_config
from tests.support.process import syncd_command as syncd


async def test_run_once_plan_json_hold_and_approve(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=80, seed=4, port=0)) as sb:
        cfg = str(
            write_config(
                tmp_path / "syncd.toml",
                sb,
                f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}",
                base=COMMAND,
                sync={"max_deletes": 5, "reassert_days": 0},
            )
        )
        code, out, err = await syncd("--config", cfg, "--run-once")
        assert code == 0, err
        assert "SUCCESS" in out

        code, out, err = await syncd("--config", cfg, "plan", "--json")
        assert code == 0, err
        plan = json.loads(out)  # stdout is exactly one JSON object; logs went to stderr
        assert plan["held"] is False and plan["operations"] == [] and plan["plan_id"]
        assert "plan.made" in err

        for e in [e for e in sb.company.employee_list() if e.status == "Active"][:8]:
            sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")
        code, out, err = await syncd("--config", cfg, "plan", "--json")
        plan = json.loads(out)
        assert code == 0 and plan["held"] is True and plan["summary"] == {"user": {"delete": 8}}
        assert {op["action"] for op in plan["operations"]} == {"delete"}

        before = sb.request_log.count(vendor="workbox")
        code, out, err = await syncd("--config", cfg, "--run-once")
        assert code == 3, (out, err)
        assert "HELD" in out and "max_deletes = 5" in out and f"syncd --config {cfg} approve" in out
        assert sb.request_log.count(vendor="workbox") == before
        plan_id = out.split(" approve ")[1].split()[0].strip("`")

        code, out, err = await syncd("--config", cfg, "approve", plan_id)
        assert code == 0, (out, err)
        assert sb.request_log.count(vendor="workbox", method="DELETE") == 8

        code, out, err = await syncd("--config", cfg, "approve", plan_id)
        assert code == 1 and "not held" in err and "Traceback" not in err

        code, out, err = await syncd("--config", cfg, "runs")
        assert code == 0 and "held" in out and "success" in out


async def test_unreachable_vendor_is_a_clean_failure(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=20, seed=4, port=0)) as sb:
        cfg = write_config(
            tmp_path / "syncd.toml",
            sb,
            f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}",
            base=(COMMAND, LENIENT_DELETES),
        )
    # the sandbox is gone now: every vendor is unreachable
    code, out, err = await syncd("--config", str(cfg), "--run-once")
    assert code == 1
    assert "no trusted read yet" in out and "Traceback" not in out + err
    # item 7 of the operator's-path issue: the message names where it tried to connect and why it
    # failed, and a refused connection is tried twice, not for ~14 s of back-off
    where = sb.base_url.removeprefix("http://")
    assert f"cannot connect to {where} (connection refused)" in out, out
    # counted, not timed: each call was retried once (attempt 1 → 2), never into the back-off ladder
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    retries = [e for e in events if e["event"] == "vendor.retry"]
    assert retries and all(e["attempt"] == 1 and e["code"] == "UnreachableError" for e in retries), retries


async def test_a_wrong_workbox_secret_is_reported_once(tmp_path: Path) -> None:
    """Item 8 of the operator's-path issue: every worker in flight got the same 401, and each logged
    it (16 identical lines); the stop is reported once, and the status is not said twice."""
    async with run_sandbox(SandboxOptions(employees=40, seed=4, port=0)) as sb:
        cfg = write_config(
            tmp_path / "syncd.toml",
            sb,
            f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}",
            base=COMMAND,
            workbox={"secret_key": "sbx-not-the-secret"},
        )
        code, out, err = await syncd("--config", str(cfg), "--run-once")
    assert code == 1, (out, err)
    assert "check workbox.api_key" in out and "HTTP 401 401" not in out + err
    loud = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    loud = [e for e in loud if e["level"] in ("warning", "error") and "401" in json.dumps(e)]
    assert [e["event"] for e in loud] == ["apply.stopped"], loud
