"""Run ``syncd`` as a real subprocess against an in-process sandbox, and watch its JSON log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from syncd.cli import render_toml
from syncd.sandbox import Sandbox

Event = dict[str, Any]


def write_config(
    path: Path, sb: Sandbox, db_url: str, *, sync: dict[str, Any] | None = None, **sections: dict[str, Any]
) -> Path:
    """A TOML config pointing at ``sb``, with fast retries and JSON logs on stderr."""
    fast = {"retry_backoff_initial": 0.05, "retry_backoff_max": 0.2, "retry_attempts": 3, "timeout": 10.0}
    data = sb.syncd_config(
        db_url,
        infinityhr=fast,
        whosoff=fast,
        workbox={**fast, "requests_per_second": 2000.0},
        sync={"schedule": "2s", "lease_period": 3.0, "lease_wait": 0.0, **(sync or {})},
        server={"listen": "127.0.0.1:0", "shutdown_timeout": 5.0},
        log={"level": "info", "format": "json"},
    )
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(render_toml(data))
    return path


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "NOTIFY_", "WATCHDOG_"))}
    env.update(extra)
    return env


class Daemon:
    """``python -m syncd --config CONFIG ARGS…`` with its stderr parsed as JSON log events."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.args = args or ("run",)
        self.env = env or base_env()
        self.events: list[Event] = []
        self.other: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.port: int | None = None

    async def start(self) -> Daemon:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "syncd", "--config", str(self.config), *self.args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").strip()
            try:
                event = json.loads(line)
            except ValueError:
                self.other.append(line)
            else:
                event["_t"] = time.time()
                self.events.append(event)
                if event.get("event") == "health.listening":
                    self.port = int(event["port"])
            self._changed.set()
        self._changed.set()

    def named(self, name: str, **fields: Any) -> list[Event]:
        return [
            e for e in self.events if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
        ]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str = "") -> Any:
        """Wait (bounded) until ``predicate()`` is truthy; fail with the log tail if it never is."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    result = predicate()
                    if result:
                        return result
                    if self.proc is not None and self.proc.returncode is not None and self._reader_done:
                        raise AssertionError(f"syncd exited ({self.proc.returncode}) before: {what}")
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.tail()}") from None

    async def wait_event(self, name: str, timeout: float, count: int = 1, **fields: Any) -> list[Event]:
        result: list[Event] = await self.wait_for(
            lambda: len(self.named(name, **fields)) >= count and self.named(name, **fields),
            timeout,
            f"{count}× {name} {fields or ''}",
        )
        return result

    @property
    def _reader_done(self) -> bool:
        return self._reader is not None and self._reader.done()

    def tail(self, n: int = 25) -> str:
        lines = [json.dumps({k: v for k, v in e.items() if k != "_t"}) for e in self.events[-n:]]
        return "\n".join(lines + self.other[-10:])

    def url(self, path: str) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}{path}"

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.url(path)) as resp:
            return resp.status, await resp.text()

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            if self._reader is not None:
                await self._reader
        return code

    async def stop(self) -> None:
        """Make sure the process is gone (test clean-up)."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
