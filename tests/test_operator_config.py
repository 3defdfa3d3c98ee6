"""Issue 14, items 1, 4 and 7 (configuration): where the database is, placeholder secrets, whom a bad
value is blamed on, and check-config's output.  Each runs ``syncd`` as a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from syncd.config import load_settings
from syncd.config.render import render_toml
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from tests.support.config import COMMAND, config_for
from tests.support.process import base_env


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxOptions(employees=30, seed=5, port=0)) as sandbox:
        yield sandbox


async def _syncd(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=base_env(COLUMNS="200", **env),
    )  # fmt: skip
    async with asyncio.timeout(90):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _config(path: Path, sb: Sandbox, url: str | None) -> Path:
    data = config_for(sb, url or "", base=(COMMAND,))
    if url is None:
        del data["database"]  # the default, as config/sandbox.toml does
    path.write_text(render_toml(data))
    return path


@pytest.mark.parametrize("url", [None, "sqlite+aiosqlite:///var/here.db"])
async def test_the_database_does_not_move_with_the_working_directory(
    sb: Sandbox, tmp_path: Path, url: str | None
) -> None:
    """Item 1: from two working directories, the same database (and so the same, empty, plan)."""
    (tmp_path / "conf").mkdir()
    cfg = _config(tmp_path / "conf" / "syncd.toml", sb, url)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    code, out, err = await _syncd("--config", str(cfg), "--run-once", cwd=one)
    assert code == 0, (out, err)
    expected = tmp_path / "conf" / ("var/here.db" if url else "syncd.db")
    assert expected.is_file() and f'"database": "{expected}"' in err  # the location is logged
    code, out, err = await _syncd("--config", str(cfg), "plan", cwd=two)
    assert code == 0, (out, err)
    assert "no changes" in out, out  # the same ledger: nothing to create again
    assert not list(one.iterdir()) and not list(two.iterdir())


async def test_state_directory_holds_the_default_database(sb: Sandbox, tmp_path: Path) -> None:
    cfg = _config(tmp_path / "syncd.toml", sb, None)
    state = tmp_path / "state"
    code, out, err = await _syncd(
        "--config", str(cfg), "--run-once", cwd=tmp_path, STATE_DIRECTORY=str(state)
    )
    assert code == 0, (out, err)
    assert (state / "syncd.db").is_file() and not (tmp_path / "syncd.db").exists()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory syncd cannot write: a read-only tmpfs as root (as under ProtectSystem=strict),
    else a directory without write permission."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o500)
        yield path
        path.chmod(0o700)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=False)
    if mounted.returncode != 0:
        pytest.skip("as root, a read-only directory needs a read-only mount, and mount failed here")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


async def test_a_read_only_state_directory_is_named(sb: Sandbox, tmp_path: Path, read_only_dir: Path) -> None:
    """Item 7: not `unable to open database file`; check-config fails too."""
    cfg = _config(tmp_path / "syncd.toml", sb, None)
    for args in (("check-config",), ("--run-once",)):
        code, _, err = await _syncd(
            "--config", str(cfg), *args, cwd=tmp_path, STATE_DIRECTORY=str(read_only_dir)
        )
        assert code != 0 and (code == 2 or args != ("check-config",)), err
        assert f"cannot write the database directory {read_only_dir}" in err, err
        assert "unable to open database file" not in err


async def test_placeholder_secrets_are_refused(sb: Sandbox, tmp_path: Path) -> None:
    """Item 4: an inline `change-me` would beat the credential file; refused, naming the key."""
    data = config_for(sb, f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}", base=(COMMAND,))
    data["workbox"]["secret_key"] = "change-me"
    cfg = tmp_path / "syncd.toml"
    cfg.write_text(render_toml(data))
    for args in (("check-config",), ("plan",)):
        code, _, err = await _syncd("--config", str(cfg), *args, cwd=tmp_path)
        assert code == 2, err
        assert (
            "secret_key looks like a template's placeholder" in err and "change-me" not in err.split("(")[0]
        )


async def test_check_config_says_where_each_secret_came_from(sb: Sandbox, tmp_path: Path) -> None:
    data = config_for(sb, f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}", base=(COMMAND,))
    secret = data["workbox"].pop("secret_key")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "workbox_secret_key").write_text(secret)
    cfg = tmp_path / "syncd.toml"
    cfg.write_text(render_toml(data))
    code, out, err = await _syncd(
        "--config", str(cfg), "check-config", cwd=tmp_path, CREDENTIALS_DIRECTORY=str(creds)
    )
    assert code == 0, err
    assert f"workbox.secret_key: credential {creds / 'workbox_secret_key'}" in err
    assert f"workbox.api_key: inline in {cfg}" in err
    assert secret not in out + err


async def test_a_bad_environment_value_is_blamed_on_the_variable(sb: Sandbox, tmp_path: Path) -> None:
    cfg = _config(tmp_path / "syncd.toml", sb, None)
    code, _, err = await _syncd(
        "--config", str(cfg), "check-config", cwd=tmp_path, SYNCD_SYNC__MAX_DELETES="many"
    )
    assert code == 2 and "environment SYNCD_SYNC__MAX_DELETES: sync.max_deletes" in err, err
    assert f"{cfg}: sync.max_deletes" not in err


async def test_check_config_output_loads_back_to_the_same_settings(sb: Sandbox, tmp_path: Path) -> None:
    data = config_for(sb, f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}", base=(COMMAND,))
    data["sync"] = {"grade_order": ["Staff", 'Lead "A"'], "position_order": []}
    cfg = tmp_path / "syncd.toml"
    cfg.write_text(render_toml(data))
    code, out, err = await _syncd("--config", str(cfg), "check-config", cwd=tmp_path)
    assert code == 0, err
    parsed = tomllib.loads(out)  # valid TOML
    assert parsed["sync"]["grade_order"] == ["Staff", 'Lead "A"'] and parsed["sync"]["position_order"] == []
    for section in ("infinityhr", "whosoff", "workbox"):  # the masked secrets put back
        for key, value in data[section].items():
            if parsed[section].get(key) == "********":
                parsed[section][key] = value
    again = tmp_path / "again.toml"
    again.write_text(out)
    again.write_text(render_toml(parsed))
    assert load_settings(again) == load_settings(cfg)


SECRETS = {"infinityhr": ("vendor_password",), "whosoff": ("client_secret", "password"),
           "workbox": ("api_key", "secret_key")}  # fmt: skip


async def test_runs_quarantine_and_db_need_no_vendor_secrets(sb: Sandbox, tmp_path: Path) -> None:
    """Issue 17, item 5: on a systemd install the secrets are the unit's credentials; reading the
    history and the quarantine, or the schema, must not need them (plan and the sync still do)."""
    data = config_for(sb, f"sqlite+aiosqlite:///{tmp_path / 'syncd.db'}", base=(COMMAND,))
    full = tmp_path / "full.toml"
    full.write_text(render_toml(data))
    code, out, err = await _syncd("--config", str(full), "--run-once", cwd=tmp_path)
    assert code == 0, (out, err)
    for section, keys in SECRETS.items():
        for key in keys:
            del data[section][key]
    bare = tmp_path / "bare.toml"
    bare.write_text(render_toml(data))
    for args in (("runs",), ("quarantine",), ("db", "current")):
        code, out, err = await _syncd("--config", str(bare), *args, cwd=tmp_path)
        assert code == 0, (args, out, err)
    code, out, _ = await _syncd("--config", str(bare), "runs", cwd=tmp_path)
    assert "run 1" in out or "1 " in out, out
    code, _, err = await _syncd("--config", str(bare), "plan", cwd=tmp_path)
    assert code == 2 and "workbox.secret_key: required key is missing" in err, err
