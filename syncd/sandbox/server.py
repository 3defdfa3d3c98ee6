"""``syncd sandbox``: serve all three vendor simulators until SIGTERM/SIGINT.

Run as ``syncd sandbox [--employees N] [--seed S] [--port P] [--host H] [--signature v1|v2]`` (wired by
``syncd.cli``) or ``python -m syncd.sandbox.server …``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .app import Sandbox, SandboxOptions

DEFAULT_PORT = 8780


async def serve(options: SandboxOptions, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set or the process gets SIGTERM/SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    sandbox = Sandbox(options)
    await sandbox.start()
    try:
        _print_banner(sandbox)
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await sandbox.stop()
    _say("syncd sandbox: stopped")


def _print_banner(sandbox: Sandbox) -> None:
    c = sandbox.company
    lines = [
        f"syncd sandbox: {len(c.employees)} employees, {len(c.departments)} departments, "
        f"{len(c.whosoff_users)} WhosOff users (seed {sandbox.options.seed}, signature "
        f"{sandbox.workbox.signature})",
        "SANDBOX-ONLY credentials: never use these anywhere else.",
    ]
    for vendor, label, url in (
        ("infinityhr", "InfinityHR", sandbox.infinityhr_url),
        ("whosoff", "WhosOff", sandbox.whosoff_url),
        ("workbox", "WORKBOX", sandbox.workbox_url),
    ):
        lines.append(f"  {label:<11} url={url}")
        lines.extend(f"    {k} = {v}" for k, v in sandbox.credentials[vendor].items())
    lines.append(f"  control     url={sandbox.control_url}/")
    lines.append("Serving until SIGTERM/SIGINT.")
    _say("\n".join(lines))


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_args(argv: list[str] | None) -> SandboxOptions:
    parser = argparse.ArgumentParser(
        prog="syncd sandbox", description="Serve the InfinityHR, WhosOff and WORKBOX simulators."
    )
    parser.add_argument("--employees", type=int, default=500, help="company size (default 500)")
    parser.add_argument("--seed", type=int, default=1, help="data generator seed (default 1)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 = any free port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--signature", choices=("v1", "v2"), default="v1", help="WORKBOX signature variant")
    args = parser.parse_args(argv)
    if args.employees < 1:
        parser.error("--employees must be at least 1")
    return SandboxOptions(
        employees=args.employees, seed=args.seed, host=args.host, port=args.port, signature=args.signature
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        asyncio.run(serve(options))
    except OSError as exc:
        sys.stderr.write(
            f"syncd sandbox: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}\n"
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
