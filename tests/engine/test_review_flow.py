"""Issue 14: review and approve as an operator does it, by pasting the commands syncd prints.

Each test runs ``syncd`` as a subprocess against the sandbox, takes the command a message names,
and runs exactly that (``shlex.split``): it must work as printed, ``--config`` included.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.service.lease import hold_lease
from tests.support.config import COMMAND, DAEMON, write_config
from tests.support.process import Daemon, base_env, syncd_command

pytestmark = pytest.mark.slow


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxOptions(employees=80, seed=4, port=0)) as sandbox:
        yield sandbox


def _config(tmp_path: Path, sb: Sandbox, *layers: object, **sections: object) -> Path:
    url = f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}"
    return write_config(tmp_path / "syncd.toml", sb, url, base=(COMMAND, *layers), **sections)  # type: ignore[arg-type]


def _terminate(sb: Sandbox, n: int) -> None:
    for e in [e for e in sb.company.employee_list() if e.status == "Active"][:n]:
        sb.mutate("terminate", employee_id=e.employee_id, termination_date="2020-01-01")


def _pasted(text: str, verb: str) -> list[str]:
    """The ``syncd … VERB …`` command a message names, as the operator would paste it."""
    m = re.search(r"`(syncd [^`]*(?<!\S)" + re.escape(verb) + r"(?![^\s`])[^`]*)`", text)
    assert m, f"no `syncd … {verb}` command in: {text}"
    return shlex.split(m.group(1))


async def _paste(argv: list[str], cwd: Path, columns: int = 200) -> tuple[int, str, str]:
    assert argv[0] == "syncd"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", *argv[1:], cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=base_env(COLUMNS=str(columns)),
    )  # fmt: skip
    async with asyncio.timeout(90):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_syncd_plan_prints_an_approve_command_that_works(sb: Sandbox, tmp_path: Path) -> None:
    """Item 2: the id `syncd plan` hands out is one `syncd approve` accepts; item 3: with --config."""
    cfg = _config(tmp_path, sb, sync={"max_deletes": 5})
    assert (await syncd_command("--config", str(cfg), "--run-once"))[0] == 0
    _terminate(sb, 8)
    code, out, err = await syncd_command("--config", str(cfg), "plan")
    assert code == 0, err
    argv = _pasted(out, "approve")
    assert "--config" in argv and str(cfg) in argv
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out, err = await _paste(argv, elsewhere)
    assert code == 0, (out, err)
    assert sb.request_log.count(vendor="workbox", method="DELETE") == 8


async def test_the_held_message_and_refusals_name_runnable_commands(sb: Sandbox, tmp_path: Path) -> None:
    """Item 3: the HELD line's command, and a refusal's, run as printed."""
    cfg = _config(tmp_path, sb, sync={"max_deletes": 5})
    assert (await syncd_command("--config", str(cfg), "--run-once"))[0] == 0
    _terminate(sb, 8)
    code, out, err = await syncd_command("--config", str(cfg), "--run-once")
    assert code == 3, (out, err)
    first = _pasted(out, "approve")
    _terminate(sb, 1)  # the sources changed: a newer cycle supersedes the held plan
    code, out, err = await syncd_command("--config", str(cfg), "--run-once")
    assert code == 3, (out, err)
    code, out, err = await _paste(first, tmp_path)
    assert code == 1 and "superseded" in err, (out, err)
    code, out, err = await _paste(_pasted(err, "approve"), tmp_path)
    assert code == 0, (out, err)
    assert sb.request_log.count(vendor="workbox", method="DELETE") == 9


async def test_runs_reads_at_80_columns_and_approve_takes_the_short_id(sb: Sandbox, tmp_path: Path) -> None:
    """Item 8: `syncd runs` fits an 80-column terminal (a plan id no longer folds over six lines):
    it shows a plan by its first 8 characters, and `approve` accepts that unique prefix."""
    cfg = _config(tmp_path, sb, sync={"max_deletes": 5})
    assert (await syncd_command("--config", str(cfg), "--run-once"))[0] == 0
    _terminate(sb, 8)
    code, out, _ = await syncd_command("--config", str(cfg), "--run-once")
    plan_id = _pasted(out, "approve")[-1]
    code, out, err = await _paste(["syncd", "--config", str(cfg), "runs"], tmp_path, columns=80)
    assert code == 0, err
    table = out.split("held plan")[0]
    assert max(map(len, table.splitlines())) <= 80, table
    rows = [line for line in table.splitlines() if re.match(r"^\s*[12]\s", line)]
    assert len(rows) == 2, table  # one line per run: nothing folds
    assert plan_id[:8] in table and plan_id not in table
    code, out, err = await _paste(["syncd", "--config", str(cfg), "approve", plan_id[:5]], tmp_path)
    assert code == 1 and "at least 8 characters" in err, (out, err)
    code, out, err = await _paste(["syncd", "--config", str(cfg), "approve", plan_id[:8]], tmp_path)
    assert code == 0, (out, err)
    assert sb.request_log.count(vendor="workbox", method="DELETE") == 8
    code, out, err = await _paste(["syncd", "--config", str(cfg), "runs"], tmp_path, columns=200)
    # the approval is told on the run that applied it, not on every run that showed the same plan
    assert out.count("approved by") == 1, out


async def test_approve_without_a_config_file_says_so(tmp_path: Path) -> None:
    """Item 3: no --config and no $SYNCD_CONFIG: say that, not only which keys are missing."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "approve", "0123", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=base_env(),
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "no config file given (use --config PATH or $SYNCD_CONFIG)" in err.decode()


async def test_a_queued_approval_shows_in_runs(sb: Sandbox, tmp_path: Path) -> None:
    """Item 5: while another process leads, `syncd runs` shows the queued approval."""
    cfg = _config(tmp_path, sb, sync={"max_deletes": 5})
    assert (await syncd_command("--config", str(cfg), "--run-once"))[0] == 0
    _terminate(sb, 8)
    code, out, _ = await syncd_command("--config", str(cfg), "--run-once")
    plan_id = _pasted(out, "approve")[-1]
    url = f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}"
    from syncd.db import engine as dbe

    engine = dbe.create_engine(url)
    try:
        async with hold_lease(url, engine, period=30, wait=5):
            code, out, err = await syncd_command("--config", str(cfg), "approve", plan_id)
            assert code == 0 and "queued" in out, (out, err)
            code, out, err = await syncd_command("--config", str(cfg), "runs")
            assert code == 0, err
            assert f"queued plan {plan_id}" in out and "approved by" in out
    finally:
        await engine.dispose()


async def test_the_leader_takes_a_queued_approval_within_seconds(sb: Sandbox, tmp_path: Path) -> None:
    """Item 5: a daemon on a 1-hour schedule applies a queued approval promptly."""
    cfg = _config(tmp_path, sb, DAEMON, sync={"max_deletes": 5, "schedule": "1h", "lease_period": 3.0})
    d = await Daemon(cfg).start()
    try:
        await d.wait_event("run.finished", 60)
        _terminate(sb, 8)
        code, out, err = await syncd_command("--config", str(cfg), "plan")
        assert code == 0, err
        argv = _pasted(out, "approve")
        code, out, err = await _paste(argv, tmp_path)
        assert code == 0 and "queued" in out, (out, err)
        await d.wait_event("run.finished", 15, count=2)
        assert sb.request_log.count(vendor="workbox", method="DELETE") == 8
    finally:
        await d.stop()


async def test_ctrl_c_says_what_is_left_and_the_rerun_counts_it(sb: Sandbox, tmp_path: Path) -> None:
    """Item 6: Ctrl-C mid-apply: exit 130 and one line saying how to finish; the rerun's record and
    message count the work it recovered."""
    cfg = _config(tmp_path, sb, workbox={"max_concurrency": 1, "requests_per_second": 1000.0})
    sb.faults["workbox"].update({"latency_ms": 40.0})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "--config", str(cfg), "--run-once",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=base_env(COLUMNS="200", PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    async with asyncio.timeout(60):
        while sb.request_log.count(vendor="workbox", method="POST") < 30:
            await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        out_b, err_b = await proc.communicate()
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 130, (out, err)
    lines = [line for line in (out + err).splitlines() if line.startswith("syncd: interrupted")]
    assert len(lines) == 1, (out, err)
    assert "left" in lines[0]
    argv = _pasted(lines[0], "--run-once")
    assert "Traceback" not in err

    sb.faults["workbox"].update({"latency_ms": 0.0})
    code, out, err = await _paste(argv, tmp_path)
    assert code == 0, (out, err)
    assert "recovered from earlier runs" in out
    code, out, err = await syncd_command("--config", str(cfg), "runs")
    assert "interrupted" in out and "recovered" in out


async def test_plan_json_names_the_held_plan(sb: Sandbox, tmp_path: Path) -> None:
    cfg = _config(tmp_path, sb, sync={"max_deletes": 5})
    assert (await syncd_command("--config", str(cfg), "--run-once"))[0] == 0
    _terminate(sb, 8)
    code, out, err = await syncd_command("--config", str(cfg), "plan", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["held"] is True and plan["held_plan_id"]
    assert (
        plan["approve"]
        == f"syncd --config {shlex.quote(os.path.abspath(cfg))} approve {plan['held_plan_id']}"
    )


async def test_a_failed_source_is_reported_once(sb: Sandbox, tmp_path: Path) -> None:
    """Item 8: a wrong InfinityHR password: the reason is printed once, not per kind and again in
    the run's error."""
    cfg = _config(tmp_path, sb, infinityhr={"vendor_password": "wrong-password"})
    code, out, err = await syncd_command("--config", str(cfg), "--run-once")
    assert code == 1, (out, err)
    assert out.count("VendorNotFoundException") == 1, out
    assert "infinityhr department, employee" in out or "infinityhr employee, department" in out, out


async def test_a_second_sigterm_during_a_cycle_stops_without_a_traceback(sb: Sandbox, tmp_path: Path) -> None:
    """Item 8: the second SIGTERM cancels the running cycle: no apscheduler CancelledError traceback,
    exit 0, and the run is recorded interrupted."""
    cfg = _config(tmp_path, sb, DAEMON, workbox={"max_concurrency": 1, "requests_per_second": 1000.0})
    sb.faults["workbox"].update({"latency_ms": 50.0})
    d = await Daemon(cfg).start()
    try:
        await d.wait_for(lambda: sb.request_log.count(vendor="workbox") >= 10, 60, "pushing")
        d.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        d.signal(signal.SIGTERM)
        code = await d.wait(30)
    finally:
        await d.stop()
    text = "\n".join(d.other) + "\n" + "\n".join(json.dumps(e) for e in d.events)
    assert code == 0, d.tail()
    assert "Traceback" not in text and "CancelledError" not in text, d.tail(60)
    assert d.named("run.interrupted"), d.tail()
