"""Start the sandbox subprocess and talk to its ``/_sandbox`` control routes (blocking, stdlib only)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Control:
    """Blocking client of ``/_sandbox`` (JSON in, JSON out)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(
            f"{self.base}/_sandbox{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def index(self) -> dict[str, Any]:
        return dict(self.call("GET", "/"))

    def set_faults(self, vendor: str, **faults: Any) -> dict[str, Any]:
        return dict(self.call("POST", f"/faults/{vendor}", faults))

    def reset_requests(self) -> None:
        self.call("POST", "/requests/reset")

    def request_summary(self) -> dict[str, Any]:
        return dict(self.call("GET", "/requests/summary"))

    def workbox_requests(self) -> int:
        return int(self.request_summary()["by_vendor"].get("workbox", 0))

    def reset_workbox(self) -> None:
        self.call("POST", "/workbox/reset")

    def mutate(self, op: str, **args: Any) -> dict[str, Any]:
        return dict(self.call("POST", "/hr/mutate", {"op": op, **args}))


@dataclass
class SandboxProcess:
    """``python -m bench.sandbox_proc`` as a child process; ``stop()`` ends it (by its pid)."""

    employees: int
    seed: int = 1
    whosoff_overlap: float = 0.6
    #: the sandbox process's event loop (bench.sandbox_proc --loop: auto, uvloop or asyncio)
    loop: str = "auto"
    proc: subprocess.Popen[bytes] | None = None
    base_url: str = ""
    started_in: float = 0.0

    def start(self, timeout: float = 600.0) -> Control:
        port = free_port()
        cmd = [
            sys.executable, "-m", "bench.sandbox_proc", "--employees", str(self.employees),
            "--seed", str(self.seed), "--port", str(port), "--whosoff-overlap", str(self.whosoff_overlap),
            "--loop", self.loop,
        ]  # fmt: skip
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ}
        )
        self.base_url = f"http://127.0.0.1:{port}"
        control = Control(self.base_url)
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}: {err[-2000:]}")
            try:
                control.index()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() - t0 > timeout:
                    self.stop()
                    raise RuntimeError(f"sandbox did not answer within {timeout:.0f} s") from None
                time.sleep(0.2)
        self.started_in = time.monotonic() - t0
        return control

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
