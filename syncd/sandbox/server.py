"""``syncd sandbox``: serve all three vendor simulators until SIGTERM/SIGINT.

Run as ``syncd sandbox [--employees N] [--seed S] [--port P] [--host H] [--signature v1|v2]
[--write-config FILE]`` (wired by ``syncd.cli``) or ``python -m syncd.sandbox.server …``;
``syncd sandbox hr …`` changes a running sandbox's HR data (:mod:`.hand`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
from pathlib import Path

from . import hand
from .app import Sandbox, SandboxOptions
from .config_file import sandbox_toml
from .dialect import DialectError, load_dialect

DEFAULT_PORT = 8780


async def serve(
    options: SandboxOptions, stop: asyncio.Event | None = None, *, write_config: Path | None = None
) -> None:
    """Serve until ``stop`` is set or the process gets SIGTERM/SIGINT (``write_config``: write a syncd
    configuration for this sandbox there first)."""
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
        if write_config is not None:  # a few hundred bytes, before serving: no need for a thread
            write_config.write_text(sandbox_toml(sandbox, default_port=DEFAULT_PORT))  # noqa: ASYNC240
        _print_banner(sandbox, write_config)
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await sandbox.stop()
    _say("syncd sandbox: stopped")


def _print_banner(sandbox: Sandbox, config_file: Path | None) -> None:
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
    url = "" if sandbox.base_url == hand.DEFAULT_URL else f" --url {sandbox.base_url}"
    if config_file is not None:
        lines.append(f"syncd configuration for it: {config_file} (`syncd --config {config_file} --run-once`)")
    elif url:
        lines.append(
            f"config/sandbox.toml points at port {DEFAULT_PORT}: for this port, write a config with "
            "--write-config FILE"
        )
    lines.append(f"Change HR data: `syncd sandbox hr terminate --count 60{url}` (`syncd sandbox hr --help`)")
    lines.append("Serving until SIGTERM/SIGINT.")
    _say("\n".join(lines))


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd sandbox",
        description="Serve the InfinityHR, WhosOff and WORKBOX simulators on one port.",
        epilog="While it runs, `syncd sandbox hr --help` shows how to change its HR data "
        "(terminate, hire, rename, … with --count N); docs/sandbox.md documents its control API.",
    )
    parser.add_argument("--employees", type=int, default=500, help="company size (default 500)")
    parser.add_argument("--seed", type=int, default=1, help="data generator seed (default 1)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 = any free port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--signature", choices=("v1", "v2"), default="v1", help="WORKBOX signature variant")
    parser.add_argument(
        "--prepopulated",
        type=int,
        default=0,
        metavar="N",
        help="a WORKBOX populated by hand before syncd: N members (and their departments, grades and "
        "positions) plus three contractors HR does not know, all without external keys",
    )
    parser.add_argument(
        "--dialect",
        metavar="FILE",
        type=Path,
        help="speak another vendor dialect (TOML; examples in config/dialects/, keys in docs/sandbox.md)",
    )
    parser.add_argument(
        "--write-config",
        metavar="FILE",
        type=Path,
        help="write a syncd configuration for this sandbox (its port, URLs, credentials) to FILE",
    )
    parser.add_argument("hr", nargs="?", help=argparse.SUPPRESS)  # `syncd sandbox hr …`: see main()
    return parser


def parse_args(argv: list[str] | None) -> tuple[SandboxOptions, Path | None]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.hr is not None:
        parser.error(f"unknown command {args.hr!r}: the sandbox's one command is `syncd sandbox hr`")
    if args.employees < 1:
        parser.error("--employees must be at least 1")
    dialect = None
    if args.dialect is not None:
        try:
            dialect = load_dialect(args.dialect)
        except DialectError as exc:
            parser.error(str(exc))
    options = SandboxOptions(
        employees=args.employees, seed=args.seed, host=args.host, port=args.port, signature=args.signature,
        dialect=dialect, prepopulated=max(0, args.prepopulated),
    )  # fmt: skip
    return options, args.write_config


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["hr"]:
        return hand.main(argv[1:])
    options, write_config = parse_args(argv)
    try:
        asyncio.run(serve(options, write_config=write_config))
    except OSError as exc:
        where = f"{options.host}:{options.port}"
        if exc.errno == errno.EADDRINUSE:
            other = options.port + 1
            sys.stderr.write(
                f"syncd sandbox: port {options.port} on {options.host} is in use (another sandbox still "
                f"running?): stop it, or serve on another port with "
                f"`syncd sandbox --port {other} --write-config sandbox-{other}.toml` and use that file "
                f"(`syncd --config sandbox-{other}.toml --run-once`)\n"
            )
        else:
            sys.stderr.write(f"syncd sandbox: cannot listen on {where}: {exc.strerror or exc}\n")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
