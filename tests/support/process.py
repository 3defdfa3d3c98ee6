"""``syncd`` as its user runs it: subprocesses (a daemon whose JSON log is watched, one-shot commands,
runs killed mid-flight) and ``syncd.cli.main`` in process."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from syncd.sandbox import Sandbox
from tests.support.workbox import workbox_requests

Event = dict[str, Any]


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


async def syncd_command(*args: str, timeout: float = 90) -> tuple[int, str, str]:
    """``python -m syncd ARGS…`` to its end: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


PHASES = ("startup", "recover", "pull", "stage", "plan", "apply", "finished")


def phase_of(log_text: str) -> str:
    """The phase a run had reached, from its JSON log lines."""
    events = []
    for line in log_text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line).get("event"))
    seen = set(events)
    if "run.finished" in seen:
        return "finished"
    if "plan.made" in seen:
        return "apply"
    if seen & {"stage.done", "stage.stale"}:
        return "stage"  # staging, merge or plan
    if "run.started" in seen:
        return "recover" if "apply.recovering" in seen and "pull.done" not in seen else "pull"
    return "startup"


@dataclass
class ProcResult:
    exit_code: int | None
    killed: bool
    phase: str
    seconds: float
    log: str
    #: seconds from the run.started log line to exit (0 if it never started)
    run_seconds: float = 0.0


async def run_syncd(
    config: Path,
    log_path: Path,
    *,
    sb: Sandbox | None = None,
    kill_after_s: float | None = None,
    kill_after_requests: int | None = None,
    args: Iterable[str] = ("--run-once",),
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> ProcResult:
    """``python -m syncd --config CONFIG ARGS``; SIGKILL it ``kill_after_s`` seconds after its
    ``run.started`` log line, or once ``kill_after_requests`` more WORKBOX requests arrived.
    Its stdout and stderr go to ``log_path`` (appended)."""
    started = time.monotonic()
    offset = log_path.stat().st_size if log_path.exists() else 0
    wb_start = workbox_requests(sb) if sb is not None else 0
    killed = False
    run_started: float | None = None
    with log_path.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "syncd", "--config", str(config), *args,
            stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
        try:
            async with asyncio.timeout(timeout):
                while proc.returncode is None:
                    if run_started is None and b'"run.started"' in _tail(log_path, offset):
                        run_started = time.monotonic()
                    by_requests = kill_after_requests is not None and sb is not None
                    if by_requests and workbox_requests(sb) >= wb_start + (kill_after_requests or 0):  # type: ignore[arg-type]
                        break
                    by_time = not by_requests and kill_after_s is not None and run_started is not None
                    if by_time and time.monotonic() - (run_started or 0.0) >= (kill_after_s or 0.0):
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.003):
                            await proc.wait()
                if proc.returncode is None:
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                await proc.wait()
        finally:
            if proc.returncode is None:  # timed out: never leave it behind
                proc.kill()
                await proc.wait()
    text = _tail(log_path, offset).decode(errors="replace")
    run_s = time.monotonic() - run_started if run_started is not None else 0.0
    return ProcResult(proc.returncode, killed, phase_of(text), time.monotonic() - started, text, run_s)


def _tail(path: Path, offset: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read()


def cli_in_process(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``syncd.cli.main(argv)`` in this process: (exit code, stderr)."""
    from syncd import cli

    err, outbuf = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(outbuf):
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, err.getvalue()
