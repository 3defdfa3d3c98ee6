"""The operator's figures: every scenario a whole ``syncd --run-once`` process (issue 18).

The stage figures (bench/worker.py) time the engine inside one process, start-up and shutdown left
out.  Here each scenario is what an operator runs and times: ``syncd --config FILE --run-once`` as a
child process, JSON logs at info on stderr, InfinityHR pages of ``--page-size``; wall time from the
parent, CPU time and peak RSS from ``wait4``'s resource usage of that child alone.  Also timed:
``syncd --version`` (best of 5).  The sandbox is a process of its own on the loop the caller started
it with (``bench.run`` measures the standard asyncio loop and uvloop).

Run: ``python -m bench.process --sandbox URL --db-url URL [--page-size 500] [--scenarios …]``;
prints one JSON object on stdout.  Figures only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.control import REPO, Control
from bench.worker import LATENCY_MS, config_for, mutate
from syncd.config.render import render_toml
from tests.support.process import base_env

#: the scenarios in order: "initial" first (it fills WORKBOX and the ledger); "-page-1000" ones read
#: InfinityHR in pages of 1,000, the others in pages of ``--page-size``; all read everything
#: (sync.full_every = "0") but "noop-incremental", a cycle between full reads (the default "6h"):
#: only InfinityHR's employees changed since the last read, none here
DEFAULT_SCENARIOS = "initial,noop,noop-incremental,noop-page-1000,changed"


def syncd_argv() -> list[str]:
    """The ``syncd`` an operator runs: the console script beside this interpreter, else ``-m syncd``."""
    script = Path(sys.executable).with_name("syncd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "syncd"]


def timed(argv: list[str], log: Path) -> dict[str, Any]:
    """Run ``argv`` with stdout and stderr to ``log``: wall, CPU (user + system) and peak RSS of the
    child from ``wait4``, its exit code, and the ``run.finished`` event of its JSON log."""
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=base_env())
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    finished: dict[str, Any] = {}
    applied: dict[str, Any] = {}  # the last apply.progress: operations settled, seconds since the first
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"run.finished"' in line:
            finished = json.loads(line)
        elif line.startswith("{") and '"apply.progress"' in line:
            applied = json.loads(line)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
        "exit": proc.returncode,
        "run_s": finished.get("seconds"),
        "result": finished.get("result"),
        "applied": applied.get("done"),
        "apply_s": applied.get("seconds"),
    }


def version_seconds(tries: int = 5) -> float:
    """``syncd --version``, best of ``tries`` (the start-up every command pays)."""
    best = float("inf")
    for _ in range(tries):
        t0 = time.monotonic()
        argv = [*syncd_argv(), "--version"]
        subprocess.run(argv, cwd=REPO, capture_output=True, check=True, env=base_env())
        best = min(best, time.monotonic() - t0)
    return best


def write_config(
    info: dict[str, Any], db_url: str, page_size: int, directory: Path, full_every: str = "0"
) -> Path:
    data = config_for(info, db_url, page_size=page_size, full_every=full_every)
    data["log"] = {"level": "info", "format": "json"}
    path = directory / f"syncd-{page_size}-{full_every}.toml"
    path.write_text(render_toml(data))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.process")
    ap.add_argument("--sandbox", required=True)
    ap.add_argument("--db-url", required=True)
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    control = Control(args.sandbox)
    info = control.index()
    control.set_faults("workbox", latency_ms=LATENCY_MS, jitter_ms=0.0)
    out: dict[str, Any] = {"page_size": args.page_size, "version_s": version_seconds(), "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        for name in args.scenarios.split(","):
            page = 1000 if name.endswith("page-1000") else args.page_size
            full_every = "6h" if name == "noop-incremental" else "0"
            config = write_config(info, args.db_url, page, Path(tmp), full_every)
            if name == "changed":
                out["mutation"] = mutate(args.sandbox, args.fraction, args.seed)
            before = control.workbox_requests()
            figures = timed([*syncd_argv(), "--config", str(config), "--run-once"], Path(tmp) / f"{name}.log")
            figures.update(page_size=page, workbox_requests=control.workbox_requests() - before)
            if figures["exit"] != 0:
                figures["log_tail"] = (Path(tmp) / f"{name}.log").read_text(errors="replace")[-2000:]
            out["scenarios"][name] = figures
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
