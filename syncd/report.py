"""Human-readable output of runs and plans (rich tables on a terminal, plain text elsewhere)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from syncd.commands import command
from syncd.literal import literal, visible
from syncd.states import RunResult

if TYPE_CHECKING:  # types only: `syncd runs` prints without importing the engine
    from syncd.engine.plan import Op
    from syncd.engine.run_report import RunReport

MAX_OPS_SHOWN = 200

# Every value that came from a source (names, ids, reasons, vendor messages) is printed through
# syncd.literal: never parsed as rich markup, control characters shown as escapes.


def console(stream: TextIO | None = None) -> Console:
    """Output at the terminal's width (or ``$COLUMNS``); 140 columns on a pipe or file."""
    stream = stream or sys.stdout
    sized = stream.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(file=stream, soft_wrap=False, width=None if sized else 140)


def _value(v: Any) -> str:
    return "—" if v is None else visible(v)


def _cell(v: Any) -> Text:
    return literal(_value(v))


def print_plan(report: RunReport, out: Console, *, show_ops: int = MAX_OPS_SHOWN) -> None:
    header = Text.assemble(("Plan", "bold"), " ", visible(report.plan_id))
    if report.held:
        header.append_text(Text.assemble("  ", ("HELD", "bold red"), ": ", visible(report.held)))
    out.print(header)
    summary = Table()
    summary.add_column("kind")
    for action in ("create", "update", "delete"):
        summary.add_column(action, justify="right")
    for kind in ("job-grade", "job-position", "dept", "user"):
        counts = report.summary.get(kind, {})
        if counts:
            summary.add_row(kind, *(str(counts.get(a, 0)) for a in ("create", "update", "delete")))
    if not report.summary:
        out.print(literal(f"Plan {report.plan_id}: no changes — WORKBOX already matches the sources."))
    else:
        out.print(summary)
    if report.ops:
        table = Table(title="Operations (in order)", title_justify="left")
        for col in ("#", "lvl", "kind", "action", "key", "changes"):
            table.add_column(col, overflow="fold")
        for op in report.ops[:show_ops]:
            table.add_row(
                str(op.seq),
                str(op.level),
                literal(op.kind),
                literal(op.action),
                literal(op.key),
                _cell(_changes(op)),
            )
        out.print(table)
        if len(report.ops) > show_ops:
            out.print(
                f"… and {len(report.ops) - show_ops} more (`{command('plan', '--all')}` shows all)",
                soft_wrap=True,
            )
    if report.reasserts:
        told = ", ".join(f"{k} {n}" for k, n in sorted(report.reasserts.items()))
        would = "would be " if report.result is RunResult.DRY_RUN else ""
        out.print(
            literal(
                f'Re-assertion (drift repair, README "Drift"): {told} {would}sent again, full bodies '
                "(created again where deleted in WORKBOX by hand)"
            ),
            soft_wrap=True,
        )
    note = report.onboarding_note()
    if note:
        out.print(literal(note), soft_wrap=True)
    print_rejects(report, out)
    for source, kind, reason in report.stale:
        out.print(
            Text.assemble(
                ("STALE", "bold yellow"),
                " ",
                visible(f"{source} {kind}: {reason}"),
                " — planned from its last good read",
            )
        )


def _changes(op: Op) -> str:
    if op.action == "delete":
        return f"name={_value((op.before or {}).get('name'))}"
    parts = []
    for fld, (old, new) in op.changes().items():
        parts.append(
            f"{fld}: {_value(new)}" if op.action == "create" else f"{fld}: {_value(old)} → {_value(new)}"
        )
    return "; ".join(parts)


def print_rejects(report: RunReport, out: Console, limit: int = 50) -> None:
    if not report.rejects:
        return
    table = Table(title=f"Quarantined records ({len(report.rejects)})", title_justify="left")
    for col in ("source", "kind", "id", "reason"):
        table.add_column(col, overflow="fold")
    for r in report.rejects[:limit]:
        table.add_row(
            literal(r.source), literal(r.kind), _cell(r.record_id), literal(f"{r.reason_code}: {r.reason}")
        )
    out.print(table)


def held_hint(report: RunReport) -> str:
    """After a dry run that would be held: what would happen, and the command that approves it."""
    held, others = len(report.held_ops), len(report.ops) - len(report.held_ops)
    now = "nothing would be applied" if report.hold_whole else f"the other {others} would be applied"
    return (
        f"A sync would be held (exit 3): {held} operations wait in plan {report.held_plan_id}, {now}. "
        f"After review: `{command('approve', report.held_plan_id or '')}`"
    )


def plan_json(report: RunReport) -> str:
    data = {
        "plan_id": report.plan_id,
        "run_id": report.run_id,
        "held": report.held is not None,
        "hold_reason": report.held,
        "held_plan_id": report.held_plan_id,
        "held_operations": len(report.held_ops),
        "approve": command("approve", report.held_plan_id) if report.held_plan_id else None,
        "summary": report.summary,
        "reassert": report.reasserts,
        "expected_adoptions": report.expected_adoptions,
        "stale_sources": [{"source": s, "kind": k, "reason": r} for s, k, r in report.stale],
        "quarantined": [
            {
                "source": r.source,
                "kind": r.kind,
                "id": r.record_id,
                "reason_code": r.reason_code,
                "reason": r.reason,
            }
            for r in report.rejects
        ],
        "operations": [op.as_dict() for op in report.ops],
    }
    return json.dumps(data, ensure_ascii=False, indent=2)


def print_run(report: RunReport, out: Console) -> None:
    colour = {"success": "green", "dry-run": "cyan", "held": "red", "stale": "yellow"}.get(
        report.result, "red"
    )
    # one line, never wrapped: the commands it names must paste whole
    out.print(
        Text.assemble((report.result.upper(), f"bold {colour}"), " ", visible(report.message())),
        soft_wrap=True,
    )
    if report.applied and report.applied.failed:
        table = Table(title="Failed operations", title_justify="left")
        for col in ("#", "kind", "key", "action", "code", "error"):
            table.add_column(col, overflow="fold")
        for f in report.applied.failed[:50]:
            table.add_row(
                str(f.seq),
                literal(f.kind),
                literal(f.key),
                literal(f.action),
                _cell(f.code),
                literal(f.message),
            )
        out.print(table)


def _short_id(plan_id: str | None) -> str:
    """A plan's first 8 characters: what ``syncd runs`` shows and ``syncd approve`` accepts."""
    return plan_id[:8] if plan_id else "—"


def _notes(run: dict[str, Any]) -> str:
    """What a run changed, and what else happened in it (quarantine, stale sources, approval)."""
    notes = [_changes_of(run["counts"] or {})]
    if run["quarantine_size"]:
        notes.append(f"quarantine {run['quarantine_size']}")
    if run["stale_sources"]:
        notes.append(f"stale: {', '.join(run['stale_sources'])}")
    if run.get("approved_by") and run["trigger"] == "approve":  # the run that applied it, not its plans
        at = run["approved_at"]
        notes.append(f"approved by {run['approved_by']}" + (f" at {at:%Y-%m-%d %H:%M} UTC" if at else ""))
    return "; ".join(notes)


def _changes_of(counts: dict[str, Any]) -> str:
    """A run's plan, and what it finished of earlier runs' operations (recovery)."""
    plan = counts.get("plan") or {}
    text = ", ".join(f"{k} {a} {n}" for k, acts in plan.items() for a, n in acts.items()) or "—"
    recovered = counts.get("recovered") or {}
    done = [
        f"{k} {a} {res} {n}"
        for k, acts in recovered.items()
        for a, results in acts.items()
        for res, n in results.items()
    ]
    return text + (f"; recovered: {', '.join(done)}" if done else "")


def print_runs(rows: list[dict[str, Any]], held: list[Any], out: Console) -> None:
    """Recent runs, one row each, readable at 80 columns: plans by their short id (see ``approve``)."""
    table = Table(
        title="Recent runs", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0)
    )
    for col in ("run", "started (UTC)", "s", "trigger", "result", "plan"):
        table.add_column(col, no_wrap=True)
    table.add_column("changes", overflow="fold", ratio=1)
    for r in rows:
        secs = f"{(r['finished_at'] - r['started_at']).total_seconds():.1f}" if r["finished_at"] else "…"
        table.add_row(
            str(r["id"]),
            r["started_at"].strftime("%Y-%m-%d %H:%M"),
            secs,
            literal(r["trigger"]),
            literal(r["result"]),
            literal(_short_id(r["plan_id"])),
            literal(_notes(r)),
        )
    out.print(table)
    for plan in held:
        if plan.status == "queued":
            out.print(literal(
                f"queued plan {plan.id} ({plan.created_at:%Y-%m-%d %H:%M} UTC): approved by "
                f"{plan.approved_by}, waiting for the leader to apply it"
            ), soft_wrap=True)  # fmt: skip
            continue
        out.print(literal(
            f"held plan {plan.id} ({plan.created_at:%Y-%m-%d %H:%M} UTC): {plan.hold_reason} "
            f"— `{command('approve', plan.id)}`"
        ), soft_wrap=True)  # fmt: skip


def print_quarantine(rows: list[Any], out: Console) -> None:
    if not rows:
        out.print("The quarantine is empty.")
    for q in rows:
        out.print(
            literal(
                f"{q.source} {q.kind} {q.record_id or q.record_key}: {q.reason_code}: {q.reason} "
                f"(since {q.first_seen:%Y-%m-%d %H:%M} UTC)"
            ),
            soft_wrap=True,  # one line per record: the commands a reason names paste whole
        )


class TerminalProgress:
    """A live progress display (rich) for the engine's long steps, on the log console."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description:<24}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> TerminalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, task: str, *, done: int, total: int | None = None) -> None:
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(visible(task), total=total)
        self._progress.update(self._tasks[task], completed=done, total=total)

    def close(self, task: str) -> None:
        if task in self._tasks:
            self._progress.remove_task(self._tasks.pop(task))
