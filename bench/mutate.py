"""Change a fraction of the sandbox's employees and work out the minimal WORKBOX operations that follows.

A mix of rename / transfer / promote / terminate, one mutation per chosen employee, applied through
``POST /_sandbox/hr/mutate``.  Employees are chosen among current directory members (Active, Leave, or
Terminated inside the grace period) whose department is active, and transfers go to another active
department, so no department appears or disappears.  The expected operations are then:

* one user ``update`` per rename, transfer and promote, one user ``delete`` per terminate;
* a job-grade / job-position ``create`` for a name no member held before, a ``delete`` for a name
  no member holds after (counted from the HR data, independently of syncd's merge).

Run in its own process (the employee list is large): ``python -m bench.mutate --sandbox URL
[--fraction 0.01] [--seed 7]``.  Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from bench.control import Control

OPS = ("rename", "transfer", "promote", "terminate")


def is_member(emp: dict[str, Any], today: dt.date, grace: int = 0) -> bool:
    if emp["status"] in ("Active", "Leave"):
        return True
    ended = emp.get("termination_date")
    if emp["status"] != "Terminated" or not ended:
        return False
    return today < dt.date.fromisoformat(str(ended)[:10]) + dt.timedelta(days=grace)


def change(control: Control, fraction: float, seed: int) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).date()
    employees = control.call("GET", "/hr/employees")
    departments = control.call("GET", "/hr/departments")
    active = sorted(d["code"] for d in departments if d["is_active"])
    active_set = set(active)
    members = {e["employee_id"]: e for e in employees if is_member(e, today)}
    candidates = sorted(eid for eid, e in members.items() if e["department_code"] in active_set)
    rng = random.Random(seed)
    count = max(len(OPS), round(len(employees) * fraction))
    chosen = rng.sample(candidates, min(count, len(candidates)))

    grades_before = Counter(e["job_grade"] for e in members.values())
    titles_before = Counter(e["job_title"] for e in members.values())
    grades, titles = grades_before.copy(), titles_before.copy()
    done: Counter[str] = Counter()
    t0 = time.perf_counter()
    for i, eid in enumerate(chosen):
        op = OPS[i % len(OPS)]
        emp = members[eid]
        if op == "rename":
            control.mutate("rename", employee_id=eid)
        elif op == "transfer":
            target = rng.choice([c for c in active if c != emp["department_code"]] or active)
            control.mutate("transfer", employee_id=eid, department_code=target)
        elif op == "promote":
            res = control.mutate("promote", employee_id=eid)
            grades[emp["job_grade"]] -= 1
            grades[res["job_grade"]] += 1
        else:
            control.mutate("terminate", employee_id=eid)
            grades[emp["job_grade"]] -= 1
            titles[emp["job_title"]] -= 1
        done[op] += 1
    mutate_s = time.perf_counter() - t0

    def diff(before: Counter[str], after: Counter[str]) -> dict[str, int]:
        created = sum(1 for name, n in after.items() if n > 0 and before.get(name, 0) <= 0)
        deleted = sum(1 for name, n in before.items() if n > 0 and after.get(name, 0) <= 0)
        return {k: v for k, v in (("create", created), ("delete", deleted)) if v}

    expected: dict[str, dict[str, int]] = {
        "user": {
            k: v
            for k, v in (
                ("update", done["rename"] + done["transfer"] + done["promote"]),
                ("delete", done["terminate"]),
            )
            if v
        }
    }
    for kind, before, after in (
        ("job-grade", grades_before, grades),
        ("job-position", titles_before, titles),
    ):
        d = diff(before, after)
        if d:
            expected[kind] = d
    return {
        "changed": len(chosen),
        "mutations": dict(done),
        "expected_ops": expected,
        "expected_total": sum(n for acts in expected.values() for n in acts.values()),
        "mutate_s": mutate_s,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.mutate")
    ap.add_argument("--sandbox", required=True)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    sys.stdout.write(json.dumps(change(Control(args.sandbox), args.fraction, args.seed)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
