"""The command line's arguments: every command, its options and its help."""

from __future__ import annotations

import argparse

from syncd import __version__


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options accepted before or after the command (``syncd --config X db upgrade`` or
    ``syncd db upgrade --config X``)."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        "-c",
        metavar="PATH",
        default=default,
        help="TOML config file (default: $SYNCD_CONFIG; else environment only)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=default,
        help="override log.level",
    )
    parser.add_argument(
        "--log-format", choices=["auto", "json", "console"], default=default, help="override log.format"
    )


#: what --full-read does (the cycles between full reads read only InfinityHR's changes)
FULL_READ = (
    "read both sources whole now, whatever sync.full_every says (a person HR purged is deleted only "
    "after a full read)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Directory sync daemon: InfinityHR + WhosOff → NAVER Cloud WORKBOX.",
        epilog="Exit codes: 0 ok, 1 sync failed, 2 usage/config error, 3 held by a safety rule.",
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    parser.add_argument("--run-once", action="store_true", help="same as `syncd run --once`")
    parser.add_argument("--dry-run", action="store_true", help="with --run-once: stop after the plan")
    parser.add_argument("--full-read", action="store_true", help="with --run-once: " + FULL_READ)
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, top=False)
        return p

    add("check-config", "print the effective configuration (secrets masked) or every problem in it")

    run = add("run", "run the daemon (scheduled sync, health/metrics); with --once: one cycle, then exit")
    run.add_argument("--once", action="store_true", help="one pull → apply cycle, then exit")
    run.add_argument("--dry-run", action="store_true", help="stop after the plan (nothing is sent)")
    run.add_argument("--full-read", action="store_true", help="with --once: " + FULL_READ)

    plan = add("plan", "pull and show what a sync would change, without applying it")
    plan.add_argument("--json", action="store_true", help="one JSON object on stdout (logs on stderr)")
    plan.add_argument("--all", action="store_true", help="show every operation, not the first 200")
    plan.add_argument("--full-read", action="store_true", help=FULL_READ)

    approve = add(
        "approve",
        "approve a held plan: apply those of its operations that the current sources still want",
    )
    approve.add_argument("plan_id")
    approve.add_argument("--by", help="who approves (recorded with the plan; default: your login name)")

    reconcile = add(
        "reconcile",
        "a sync that also re-asserts every entity now (repairs changes made by hand in WORKBOX)",
    )
    reconcile.add_argument(
        "--kind", choices=["dept", "user", "job-grade", "job-position"], help="this kind only"
    )
    reconcile.add_argument(
        "--dry-run", action="store_true", help="say what would be re-asserted; send nothing"
    )

    runs = add("runs", "list recent runs")
    runs.add_argument("--limit", type=int, default=20)

    add("quarantine", "list the records held back (rejected, or unmapped_in_workbox), with the reason")

    _keys(add("keys", "external keys for WORKBOX's organisation mapping form (nothing is sent)"))

    doctor = add(
        "doctor",
        "check the configuration against the real services (read-only): each failure with the lines to set",
    )
    doctor.add_argument("--vendor", choices=["infinityhr", "whosoff", "workbox"], help="check this one only")
    doctor.add_argument("--json", action="store_true", help="one JSON object per check on stdout")

    check = add("healthcheck", "exit 0 if the running daemon's /readyz says ready, else 1")
    check.add_argument("--url", help="readiness URL (default: /readyz on server.listen)")

    demo = add("demo", "run the whole product against the bundled sandbox (SQLite; under a minute)")
    demo.add_argument("--employees", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--dir", metavar="DIR", help="keep the SQLite database here (default: a temp dir)")

    _db(add("db", "staging database schema (Alembic migrations)"))

    sandbox = add("sandbox", "serve the bundled InfinityHR/WhosOff/WORKBOX simulators")
    sandbox.add_argument(
        "sandbox_args", nargs=argparse.REMAINDER, help="the sandbox's own options and commands"
    )
    return parser


def _keys(keys: argparse.ArgumentParser) -> None:
    """``syncd keys export`` and ``syncd keys fill``."""
    keysub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    export = keysub.add_parser(
        "export", help="write every desired entity's external key beside its name (xlsx: one sheet per kind)"
    )
    kinds = ["dept", "user", "job-grade", "job-position"]
    export.add_argument("--kind", choices=kinds, help="this kind only")
    export.add_argument("--format", choices=["xlsx", "csv"], default="xlsx", help="xlsx (default) or csv")
    export.add_argument("--out", metavar="DIR", default=".", help="the directory to write to (default: .)")
    _common(export, top=False)
    filler = keysub.add_parser(
        "fill", help="fill the external-key column of the mapping form downloaded from the WORKBOX console"
    )
    filler.add_argument("form", metavar="FORM.xlsx")
    filler.add_argument("--kind", choices=kinds, required=True, help="the kind the form lists")
    filler.add_argument("--out", metavar="FILLED.xlsx", help="where to write (default: FORM-filled.xlsx)")
    _common(filler, top=False)


def _db(db: argparse.ArgumentParser) -> None:
    """``syncd db upgrade | downgrade | current | backup``."""
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="upgrade the schema (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = dbsub.add_parser("downgrade", help="downgrade the schema to REV ('base' removes it)")
    down.add_argument("revision")
    down.add_argument("--yes", action="store_true", help="confirm a downgrade to base (it drops every table)")
    current = dbsub.add_parser("current", help="print the schema's current revision")
    backup = dbsub.add_parser(
        "backup",
        help="write a consistent copy of the staging database to PATH (SQLite; PostgreSQL: use pg_dump)",
    )
    backup.add_argument("path", metavar="PATH")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    for p in (up, down, current, backup):
        _common(p, top=False)
