"""``syncd demo``: the whole product on the embedded default, in well under a minute.

Starts the bundled vendor sandbox in this process, keeps the staging database in a SQLite file, runs
a first sync, applies a scripted set of HR changes, syncs again and shows exactly those changes.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console

from syncd import report
from syncd.config import Settings
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.engine.run_report import RunReport
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox, syncd_config_for
from syncd.states import Action


def demo_settings(sb: Sandbox, db_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{db_path}"
    return Settings.model_validate(syncd_config_for(sb, url, workbox={"requests_per_second": 1000.0}))


def scripted_changes(sb: Sandbox) -> list[tuple[str, dict[str, Any]]]:
    """Six HR changes on real records of the generated company (deterministic for a seed)."""
    company = sb.company
    active_depts = [d for d in company.departments.values() if d.is_active]
    people = [
        e
        for e in company.employee_list()
        if e.status == "Active" and company.departments[e.department_code].is_active
    ]
    first, second, third, fourth, fifth = people[1], people[2], people[3], people[4], people[5]
    other = next(d for d in active_depts if d.code != second.department_code)
    grades = [g for g in company.job_grades if g != fourth.job_grade]
    move, new_parent = next(
        (d, p)
        for d in active_depts
        if d.parent_code is not None
        for p in active_depts
        if p.code not in (d.code, d.parent_code) and d.code not in company.hr_chain(p.code)
    )
    return [
        ("hire", {"department_code": first.department_code, "first_name": "Hana", "last_name": "Demo",
                  "work_email": "hana.demo@example.com"}),
        ("transfer", {"employee_id": second.employee_id, "department_code": other.code}),
        ("rename", {"employee_id": third.employee_id, "last_name": f"{third.last_name}-Park"}),
        ("promote", {"employee_id": fourth.employee_id, "job_grade": grades[0]}),
        ("terminate", {"employee_id": fifth.employee_id, "termination_date": "2020-01-01"}),
        ("dept_move", {"department_code": move.code, "parent_code": new_parent.code}),
    ]  # fmt: skip


async def run_demo(
    *, employees: int = 300, seed: int = 7, directory: Path | None = None, out: Console | None = None
) -> int:
    out = out or report.console()
    workdir = directory or Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "syncd.db"
    async with run_sandbox(SandboxOptions(employees=employees, seed=seed, port=0)) as sb:
        settings = demo_settings(sb, db_path)
        out.rule("[bold]syncd demo")
        out.print(f"Sandbox: InfinityHR, WhosOff and WORKBOX simulators at {sb.base_url}")
        out.print(f"Company: {_company(sb)}")
        out.print(f"Staging database: {db_path}")
        async with SyncContext.open(settings) as ctx:
            out.rule("1. First sync into an empty WORKBOX")
            first = await run_cycle(ctx, trigger="demo")
            report.print_run(first, out)
            _show_state(sb, out)
            if first.exit_code:
                return first.exit_code

            out.rule("2. HR changes in the sources")
            for op, args in scripted_changes(sb):
                result = sb.mutate(op, **args)
                out.print(f"  {op:<10} {_describe(result)}")
            before = sb.request_log.count(vendor="workbox")

            out.rule("3. Second sync: exactly those changes")
            second = await run_cycle(ctx, trigger="demo")
            report.print_plan(second, out)
            report.print_run(second, out)
            out.print(_requests_line(sb.request_log.count(vendor="workbox") - before, second))

            out.rule("4. A third sync has nothing to do")
            before = sb.request_log.count(vendor="workbox")
            third = await run_cycle(ctx, trigger="demo")
            report.print_run(third, out)
            out.print(_requests_line(sb.request_log.count(vendor="workbox") - before, third))
        _next_steps(out, db_path)
        return max(second.exit_code, third.exit_code)


def _company(sb: Sandbox) -> str:
    """The generated company in the numbers the first sync's result is explained by."""
    c = sb.company
    status = Counter(e.status for e in c.employees.values())
    inactive = sum(not d.is_active for d in c.departments.values())
    return (
        f"{len(c.employees)} employees ({status['Active']} active, {status['Leave']} on leave, "
        f"{status['Terminated']} terminated), {len(c.departments)} departments"
        + (f" ({inactive} inactive)" if inactive else "")
    )


def _show_state(sb: Sandbox, out: Console) -> None:
    state = sb.workbox_state.to_json()
    out.print("WORKBOX now holds: " + ", ".join(f"{len(v)} {k}" for k, v in state.items()))
    out.print(
        "  members are the active and on-leave employees; terminated employees and inactive departments "
        "are not synced"
    )
    for key, body in list(state["user"].items())[:3]:
        out.print(f"  user {key}: {body}")


def _describe(result: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("op", "when"))


def _next_steps(out: Console, db_path: Path) -> None:
    out.rule("Where to look next")
    url = f"sqlite+aiosqlite:///{db_path}"
    out.print(f"  Run history:      SYNCD_DATABASE__URL={url} syncd --config config/sandbox.toml runs")
    out.print(
        "  Your own sandbox: syncd sandbox   (then in another shell:  syncd -c config/sandbox.toml plan)"
    )
    out.print('  Change its HR:    syncd sandbox hr terminate --count 60   (README: "Try it by hand")')
    out.print(
        "  Configuration:    config/syncd.example.toml documents every key; README.md explains operation"
    )


def _requests_line(requests: int, run: RunReport) -> str:
    """How many requests a sync sent, re-assertions (drift repair) apart."""
    told = sum(run.applied.outcomes_of(Action.REASSERT).values()) if run.applied else 0
    line = f"WORKBOX requests in this sync: {requests - told}"
    if told:
        line += f' (and {told} re-assertion{"s" if told > 1 else ""}: drift repair, README "Drift")'
    return line
