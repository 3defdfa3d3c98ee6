"""Issue 14, item 9: the sandbox driven by hand, as the README's "try it by hand" section does.

``syncd sandbox --help`` is the sandbox's own help; a busy port says what to do; the control API
takes bulk mutations, and ``syncd sandbox hr …`` drives it from a shell.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tomllib
from pathlib import Path

import aiohttp

from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from tests.support.process import base_env


async def _syncd(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=base_env(COLUMNS="200"),
    )  # fmt: skip
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_syncd_sandbox_help_is_the_sandboxs_own() -> None:
    code, out, err = await _syncd("sandbox", "--help")
    assert code == 0, err
    assert "--employees" in out and "--port" in out and "hr" in out
    assert "see `syncd sandbox --help`" not in out  # the wrapper's help pointed at itself
    code, out, err = await _syncd("sandbox", "hr", "--help")
    assert code == 0, err
    assert "terminate" in out and "hire" in out and "rename" in out


async def test_a_busy_port_suggests_another() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = await _syncd("sandbox", "--port", str(port), "--employees", "5")
    assert code == 1
    assert f"port {port} on 127.0.0.1 is in use" in err, err
    assert f"syncd sandbox --port {port + 1} --write-config" in err, err


async def test_bulk_mutations_through_the_control_api() -> None:
    async with run_sandbox(SandboxOptions(employees=40, seed=3, port=0)) as sb:
        async with aiohttp.ClientSession() as http:
            url = f"{sb.control_url}/hr/mutate"
            async with http.post(url, json={"op": "terminate", "count": 6}) as r:
                body = await r.json()
                assert r.status == 200, body
            assert body["count"] == 6 and len(body["results"]) == 6
            async with http.post(url, json={"op": "hire", "count": 3}) as r:
                assert r.status == 200 and (await r.json())["count"] == 3
            async with http.post(url, json={"op": "terminate", "count": 1000}) as r:
                assert r.status == 400 and "only" in (await r.json())["error"]
            async with http.post(url, json={"op": "terminate", "count": 0}) as r:
                assert r.status == 400 and "count" in (await r.json())["error"]
        terminated = [e for e in sb.company.employee_list() if e.status == "Terminated"]
        ids = {r["employee_id"] for r in body["results"]}
        assert ids <= {e.employee_id for e in terminated}


async def test_syncd_sandbox_hr_terminates_hires_and_renames(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=40, seed=3, port=0)) as sb:
        before = {e.employee_id: e.status for e in sb.company.employee_list()}
        url = sb.base_url
        code, out, err = await _syncd("sandbox", "hr", "terminate", "--count", "5", "--url", url)
        assert code == 0, err
        assert "terminated 5 employees" in out, out
        code, out, err = await _syncd("sandbox", "hr", "hire", "--count", "2", "--url", url)
        assert code == 0 and "hired 2 employees" in out, (out, err)
        code, out, err = await _syncd("sandbox", "hr", "rename", "--count", "3", "--url", url)
        assert code == 0 and "renamed 3 employees" in out, (out, err)
        after = sb.company.employee_list()
        assert len(after) == len(before) + 2
        ended = sum(s == "Terminated" for s in before.values())
        assert sum(e.status == "Terminated" for e in after) == ended + 5
        code, out, err = await _syncd(
            "sandbox", "hr", "terminate", "--count", "5", "--url", "http://127.0.0.1:9"
        )
        assert code == 1 and "cannot reach the sandbox at http://127.0.0.1:9" in err, err


async def test_write_config_matches_the_port(tmp_path: Path) -> None:
    """`--write-config` writes a syncd config for the port the sandbox listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = tmp_path / "sb.toml"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syncd", "sandbox", "--port", str(port), "--employees", "5",
        "--write-config", str(target),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=base_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while b"Serving until" not in (line := await proc.stdout.readline()):
                assert line, "the sandbox exited early"
        config = tomllib.loads(target.read_text())
        assert config["workbox"]["url"].startswith(f"http://127.0.0.1:{port}/")
        assert "url" not in config.get("database", {})  # the default: syncd.db beside the file
        code, _, err = await _syncd("--config", str(target), "check-config")
        assert code == 0, err
    finally:
        proc.terminate()
        await proc.wait()


async def test_config_sandbox_toml_is_what_write_config_writes() -> None:
    """config/sandbox.toml is the rendering for the default port: it cannot drift from the sandbox."""
    from syncd.sandbox.config_file import sandbox_toml
    from syncd.sandbox.server import DEFAULT_PORT

    shipped = (Path(__file__).parents[2] / "config" / "sandbox.toml").read_text()
    sb = Sandbox(SandboxOptions(employees=5, port=DEFAULT_PORT))  # not started: only its URLs are used
    assert sandbox_toml(sb, default_port=DEFAULT_PORT) == shipped
