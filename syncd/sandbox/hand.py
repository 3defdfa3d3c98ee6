"""``syncd sandbox hr …``: change a running sandbox's HR data from a shell (its control API).

    syncd sandbox hr terminate --count 60       # a termination wave: the next sync holds it
    syncd sandbox hr hire --count 5
    syncd sandbox hr rename --count 3
    syncd sandbox hr transfer --count 2 --department D010

Each command is one ``POST /_sandbox/hr/mutate`` with ``"count"`` (see :mod:`.mutations`): the
first N active employees by EmployeeID, or N new hires.  ``--employee-id`` targets one person.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8780"

#: command → (op, past tense, what it needs)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "terminate": ("terminate", "terminated", "--date YYYY-MM-DD (default today)"),
    "hire": ("hire", "hired", "--department CODE (default: a random active department)"),
    "rename": ("rename", "renamed", "--last-name NAME (default: the old one + '-Lee')"),
    "transfer": ("transfer", "transferred", "--department CODE (required)"),
    "leave": ("set_status", "sent on leave", ""),
    "reinstate": ("set_status", "reinstated", ""),
    "delete": ("delete", "deleted from HR", ""),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd sandbox hr",
        description="Change the HR data of a running `syncd sandbox` (InfinityHR, and WhosOff with it).",
        epilog="Then run a sync (`syncd --config config/sandbox.toml --run-once`) to see what syncd does.",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (_, done, needs) in COMMANDS.items():
        p = sub.add_parser(name, help=f"{name} employees" + (f"; {needs}" if needs else ""))
        p.add_argument("--count", type=int, default=1, help="how many employees (default 1)")
        p.add_argument("--employee-id", metavar="ID", help="this employee only (instead of --count)")
        p.add_argument("--url", default=DEFAULT_URL, help=f"the sandbox (default {DEFAULT_URL})")
        if name == "terminate":
            p.add_argument("--date", metavar="YYYY-MM-DD", help="termination date (default today)")
        if name in ("hire", "transfer"):
            p.add_argument("--department", metavar="CODE", required=name == "transfer")
        if name == "rename":
            p.add_argument("--last-name", metavar="NAME")
        p.set_defaults(done=done)
    return parser


def _body(args: argparse.Namespace) -> dict[str, Any]:
    op = COMMANDS[args.action][0]
    body: dict[str, Any] = {"op": op}
    if args.employee_id:
        body["employee_id"] = args.employee_id
    else:
        body["count"] = args.count
    if args.action == "leave":
        body["status"] = "Leave"
    if args.action == "reinstate":
        body["status"] = "Active"
    if getattr(args, "date", None):
        body["termination_date"] = args.date
    if getattr(args, "department", None):
        body["department_code"] = args.department
    if getattr(args, "last_name", None):
        body["last_name"] = args.last_name
    return body


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if not url.startswith(("http://", "https://")):
        raise urllib.error.URLError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(  # noqa: S310 (http or https: checked above)
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    base = args.url.rstrip("/").removesuffix("/_sandbox")
    if args.action == "reinstate" and not args.employee_id:
        sys.stderr.write("syncd sandbox hr: reinstate needs --employee-id (count picks active employees)\n")
        return 2
    try:
        status, answer = _post(f"{base}/_sandbox/hr/mutate", _body(args))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        sys.stderr.write(f"syncd sandbox hr: cannot reach the sandbox at {base} ({reason}); is it running?\n")
        return 1
    if status != 200:
        sys.stderr.write(f"syncd sandbox hr: refused: {answer.get('error', answer)}\n")
        return 1
    results = answer.get("results", [answer])
    ids = [str(r.get("employee_id")) for r in results]
    shown = ", ".join(ids if len(ids) <= 10 else [*ids[:5], "…", *ids[-3:]])
    noun = "employee" if len(ids) == 1 else "employees"
    sys.stdout.write(f"{args.done} {len(ids)} {noun}: {shown}\n")
    return 0
