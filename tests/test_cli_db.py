"""``syncd db`` as an operator meets it: an unknown revision is one line, a destructive downgrade asks."""

from __future__ import annotations

from pathlib import Path

from syncd.db.engine import SCHEMA_HEAD
from syncd.sandbox import SandboxOptions, run_sandbox
from tests.support.config import COMMAND, write_config
from tests.support.process import syncd_command as syncd


async def test_unknown_revision_is_one_line_and_a_usage_error(db_url: str, tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=5, seed=1, port=0)) as sb:
        cfg = str(write_config(tmp_path / "syncd.toml", sb, db_url, base=COMMAND))
        for action in ("upgrade", "downgrade"):
            code, out, err = await syncd("--config", cfg, "db", action, "9999")
            assert code == 2, (action, out, err)
            lines = [line for line in err.splitlines() if line.startswith("syncd:")]
            assert lines == [f"syncd: error: unknown revision 9999; known: 0001…{SCHEMA_HEAD}, head, base"], (
                err
            )
            assert "unexpected error" not in err and "CommandError" not in err


async def test_downgrade_to_base_requires_yes_and_says_what_is_lost(db_url: str, tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=5, seed=1, port=0)) as sb:
        cfg = str(write_config(tmp_path / "syncd.toml", sb, db_url, base=COMMAND))
        code, out, err = await syncd("--config", cfg, "--run-once")
        assert code == 0, (out, err)
        code, out, err = await syncd("--config", cfg, "db", "downgrade", "base")
        assert code == 2, (out, err)
        assert "ledger rows" in err and "journal entries" in err and "runs" in err, err
        assert f"syncd --config {cfg} db downgrade base --yes" in err, err
        code, out, err = await syncd("--config", cfg, "db", "current")
        assert code == 0 and out.startswith(SCHEMA_HEAD), (out, err)  # nothing was dropped
        code, out, err = await syncd("--config", cfg, "db", "downgrade", "base", "--yes")
        assert code == 0, (out, err)
        assert "base (empty)" in out
