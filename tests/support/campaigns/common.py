"""Shared machinery of the reliability campaigns (issue 8): databases, syncd subprocesses, checks.

Used by ``python -m bench.reliability`` (the full campaigns) and by ``tests/reliability`` (the small
versions in the default test run).  The syncd subprocesses are :mod:`tests.support.process`, their
configuration :data:`tests.support.config.CAMPAIGN_PROCESS`.  Everything is bounded in time;
nothing here edits the engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from syncd.sandbox import MutationError, Sandbox
from tests.support.oracle import expected_directory
from tests.support.pg import temporary_database
from tests.support.workbox import State, workbox_state

Effect = dict[str, Any] | None


# ------------------------------------------------------------------------------------ databases


@contextlib.asynccontextmanager
async def database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """A fresh, empty database URL of ``kind`` ("sqlite" | "postgres"), dropped afterwards.
    A URL (e.g. from the tests' ``db_url`` fixture) is used as it is."""
    if "://" in kind:
        yield kind
    elif kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'syncd-{uuid.uuid4().hex[:8]}.db'}"
    else:  # PostgreSQL may be restarting at the end (crash campaign): retry the drop for a while
        async with temporary_database("syncd_rel", drop_retries=30) as url:
            yield url


async def dump_tables(db_url: str) -> str:
    """Every row of every table of the staging database, as text (for the leak scan)."""
    engine = create_async_engine(db_url)
    lines: list[str] = []
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            for name in sorted(names):
                rows = (await conn.execute(sa.text(f'SELECT * FROM "{name}"'))).all()
                lines.extend(
                    f"{name}: {tuple(row)!r} {json.dumps([str(v) for v in row], ensure_ascii=False)}"
                    for row in rows
                )
    finally:
        await engine.dispose()
    return "\n".join(lines)


async def read_journal(db_url: str) -> tuple[State, list[dict[str, Any]]]:
    """(ledger, operations ordered by id) straight from the database."""
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            ledger_rows = (await conn.execute(sa.text("SELECT kind, external_key, body FROM ledger"))).all()
            op_rows = (
                await conn.execute(
                    sa.text("SELECT id, kind, external_key, action, body, state FROM operations ORDER BY id")
                )
            ).all()
    finally:
        await engine.dispose()

    def js(v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v

    ledger = {(k, key): js(body) for k, key, body in ledger_rows}
    ops = [
        {"id": i, "kind": k, "key": key, "action": a, "body": js(b), "state": s}
        for i, k, key, a, b, s in op_rows
    ]
    return ledger, ops


# ---------------------------------------------------------------------------------------- state


def oracle(sb: Sandbox) -> State:
    return expected_directory(sb.company)


def _effect(op: dict[str, Any]) -> Effect:
    return None if op["action"] == "delete" else op["body"]


@dataclass
class Consistency:
    """What the journal, the ledger and WORKBOX say about each other at one instant."""

    lost: list[str] = field(default_factory=list)  # journal says done, WORKBOX lacks it
    ledger_mismatch: list[str] = field(default_factory=list)  # ledger != WORKBOX, no op in flight


def check_consistency(ledger: State, ops: list[dict[str, Any]], wb: State) -> Consistency:
    """Journal/ledger vs WORKBOX, allowing exactly what a crash may leave: operations sent but unsettled.

    * lost: the latest ``done`` operation of a key is not what WORKBOX holds, and no later unsettled
      operation of that key explains what it holds instead;
    * ledger mismatch: the ledger's body of a key differs from WORKBOX's and no unsettled operation
      of that key explains the difference.
    """
    out = Consistency()
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for op in ops:
        by_key.setdefault((op["kind"], op["key"]), []).append(op)
    for key in sorted(set(ledger) | set(wb) | set(by_key)):
        history = by_key.get(key, [])
        done = [i for i, op in enumerate(history) if op["state"] == "done"]
        unsettled = [op for op in history if op["state"] in ("pending", "in_flight")]
        explained = any(_effect(op) == wb.get(key) for op in unsettled)
        if done:
            last = history[done[-1]]
            later = [op for op in history[done[-1] + 1 :] if op["state"] in ("pending", "in_flight")]
            if _effect(last) != wb.get(key) and not any(_effect(op) == wb.get(key) for op in later):
                out.lost.append(f"{key[0]}/{key[1]}: journal #{last['id']} {last['action']} done")
        if ledger.get(key) != wb.get(key) and not explained:
            out.ledger_mismatch.append(f"{key[0]}/{key[1]}")
    return out


def duplicates(sb: Sandbox) -> list[str]:
    """Objects POSTed with 201 while they already existed (no DELETE between), and shared e-mails."""
    exists: dict[str, bool] = {}
    dups: list[str] = []
    for e in sb.request_log:
        if e["vendor"] != "workbox":
            continue
        path = e["raw_path"]
        if e["method"] == "POST" and e["status"] == 201:
            if exists.get(path):
                dups.append(path.split("/", 7)[-1])
            exists[path] = True
        elif e["method"] == "DELETE" and e["status"] == 200:
            exists[path] = False
    emails = Counter(b.get("emailAddr", "").lower() for (k, _), b in workbox_state(sb).items() if k == "user")
    dups.extend(f"email {m} held by {n} members" for m, n in emails.items() if n > 1)
    return dups


# ------------------------------------------------------------------------------------- mutations


def random_changes(sb: Sandbox, rng: random.Random, n: int) -> list[str]:
    """``n`` random HR changes of every kind (hire, transfer, rename, e-mail, promotion, termination,
    department create/rename/move); returns what was done."""
    company = sb.company
    done: list[str] = []
    ops = ["hire", "transfer", "rename", "email_change", "promote", "terminate", "dept_rename",
           "dept_create", "dept_move"]  # fmt: skip
    attempts = 0
    while len(done) < n and attempts < n * 10:
        attempts += 1
        op = rng.choice(ops)
        active = [e for e in company.employee_list() if e.status == "Active"]
        depts = [d for d in company.departments.values() if d.is_active]
        emp = rng.choice(active) if active else None
        args: dict[str, Any] = {}
        if op == "hire":
            args = {"department_code": rng.choice(depts).code}
        elif op == "transfer" and emp:
            args = {"employee_id": emp.employee_id, "department_code": rng.choice(depts).code}
        elif op == "rename" and emp:
            args = {"employee_id": emp.employee_id, "last_name": rng.choice(["Lee", "Park", "Smith", "Ng"])}
        elif op in ("email_change", "promote") and emp:
            args = {"employee_id": emp.employee_id}
        elif op == "terminate" and emp:
            args = {"employee_id": emp.employee_id, "termination_date": "2020-01-01"}
        elif op == "dept_rename":
            args = {"department_code": rng.choice(depts).code, "name": f"Renamed {rng.randrange(10**6)}"}
        elif op == "dept_create":
            args = {"parent_code": rng.choice(depts).code}
        elif op == "dept_move":
            args = {"department_code": rng.choice(depts).code, "parent_code": rng.choice(depts).code}
        else:
            continue
        try:
            sb.mutate(op, **args)
        except MutationError:
            continue
        done.append(op)
    return done


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# ------------------------------------------------------------------------------------- reporting


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (readable as plain text too)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def quiet_libraries() -> None:
    """Debug logging for syncd (the leak scan wants every line), not for the database drivers."""
    import logging

    for name in ("aiosqlite", "asyncpg", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.INFO)


def reset_logging() -> None:
    """Undo :func:`syncd.logging.configure_logging` (its stream is about to be closed)."""
    import logging

    import structlog

    root = logging.getLogger()
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()


def db_label(db: str) -> str:
    """ "sqlite" / "postgres" for a kind or a URL."""
    return "postgres" if db.startswith("postgres") else "sqlite"
