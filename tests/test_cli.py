"""The command line as the README shows it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from syncd import commands


async def test_syncd_sandbox_takes_its_own_options_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        "sandbox",
        "--employees",
        "20",
        "--seed",
        "2",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        banner = (await proc.stdout.readline()).decode()
        assert "20 employees" in banner and "seed 2" in banner
        while b"WORKBOX" not in await proc.stdout.readline():
            pass
        proc.send_signal(signal.SIGTERM)
        await proc.communicate()
    assert proc.returncode == 0


async def test_unknown_option_of_another_command_is_a_usage_error() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        "runs",
        "--employees",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 2 and b"unrecognized arguments: --employees 3" in err


def test_commands_under_the_units_are_spelled_for_syncd_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17, item 5: under the units a pasted `syncd --config … approve` would run as root without
    the unit's credentials or state directory; the units set SYNCD_COMMAND=syncd-admin."""
    monkeypatch.delenv(commands.COMMAND_ENV, raising=False)
    commands.use_config("/etc/syncd/syncd.toml")
    try:
        plain = "syncd --config /etc/syncd/syncd.toml approve 3f2a9c1e"
        assert commands.command("approve", "3f2a9c1e") == plain
        monkeypatch.setenv(commands.COMMAND_ENV, "syncd-admin")
        assert commands.command("approve", "3f2a9c1e") == "syncd-admin approve 3f2a9c1e"
        assert commands.command("--run-once") == "syncd-admin --run-once"
    finally:
        commands.use_config(None)


def test_the_cli_imports_no_engine_before_a_command_runs() -> None:
    """Issue 18: `syncd --version` took 1.5 s importing the engine, SQLAlchemy, aiohttp, Alembic and
    rich for every command; a command's module is imported when it runs (no timing here)."""
    heavy = ("sqlalchemy", "aiohttp", "alembic", "pydantic", "rich", "structlog", "apscheduler", "lxml")
    probe = f"import sys, syncd.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_full_read_is_for_one_cycle_only(capsys: pytest.CaptureFixture[str]) -> None:
    """``--full-read`` belongs to ``--run-once`` and ``plan``; the daemon reads as sync.full_every says."""
    from syncd.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--full-read"])
    assert exc.value.code == 2 and "--full-read needs --run-once" in capsys.readouterr().err
