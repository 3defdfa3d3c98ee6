"""``python -m syncd.sandbox.server`` starts, prints its URLs, answers, and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp


async def test_server_process_serves_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd.sandbox.server",
        "--port",
        "0",
        "--employees",
        "30",
        "--seed",
        "4",
        "--signature",
        "v2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        control = None
        banner = []
        async with asyncio.timeout(20):
            while control is None:
                line = (await proc.stdout.readline()).decode()
                assert line, "sandbox exited before printing its URLs"
                banner.append(line)
                if m := re.search(r"control\s+url=(\S+)", line):
                    control = m.group(1)
        text = "".join(banner)
        assert "sbx-secret-key-0001" in text and "/whosoff" in text and "EmployeeService.asmx" in text
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.get(control) as r:
                index = await r.json()
                assert index["employees"] == 30 and index["signature"] == "v2"
            async with http.get(index["urls"]["whosoff"] + "/v4/department/retrieve/") as r:
                assert r.status == 400  # no token: TOK004 from a live WhosOff
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
