"""Read both sources and turn their records into the plain payloads that are staged and merged.

Each read becomes a :class:`Pulled`: records by id, the records that could not be used (unparseable,
or an id that appears twice in one read), and the read's error if it failed part-way.  Whether a read
is trusted is decided by :mod:`syncd.engine.stage`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import structlog

from syncd.engine.progress import NULL_PROGRESS, Progress
from syncd.engine.shared import share
from syncd.engine.validate import Reject, id_problem
from syncd.errors import SyncdError
from syncd.vendors import (
    Department,
    Employee,
    EmployeePage,
    InfinityHRClient,
    InvalidRecord,
    WhosOffClient,
    WhosOffDepartment,
    WhosOffUser,
)
from syncd.vendors.common import consume
from syncd.vendors.infinityhr import DateRange

log = structlog.get_logger("syncd.engine.pull")

Payload = dict[str, Any]
SourceKind = tuple[str, str]


@dataclass
class Pulled:
    source: str
    kind: str
    records: dict[str, Payload] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: when the read began (the next read of changes starts there)
    started_at: dt.datetime | None = None
    #: only the records changed in a date range (:mod:`syncd.engine.reads`), not the whole source
    changes: bool = False


# ----------------------------------------------------------------------------- normalisation


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


#: staged employee fields; ``last_modified`` is the vendor's bookkeeping, not directory data
_EMPLOYEE_FIELDS = tuple(f.name for f in dataclasses.fields(Employee) if f.name != "last_modified")
#: of those, the values many records repeat (a department, a title, a status, a given or family name):
#: each kept once, not once a record (memory at 100k)
_SHARED = ("department_code", "job_title", "job_grade", "employment_status", "department_name",
           "parent_department_code", "first_name", "middle_name", "last_name", "preferred_name")  # fmt: skip
_PLAIN = tuple(name for name in _EMPLOYEE_FIELDS if name not in _SHARED)
assert set(_SHARED) <= set(_EMPLOYEE_FIELDS)


def employee_payload(e: Employee) -> Payload:
    """The staged form of an employee.  SSN and PersonalEmail do not exist here (dropped at parse)."""
    # a shallow dict (the values are immutable): dataclasses.asdict deep-copies, a third of a no-op pull
    data = {name: getattr(e, name) for name in _PLAIN}
    data["employee_id"] = sys.intern(e.employee_id)  # the ledger's key for the member is this string
    for name in _SHARED:
        data[name] = share(getattr(e, name))
    data["hire_date"] = share(_iso(e.hire_date))
    data["termination_date"] = share(_iso(e.termination_date))
    return data


def department_payload(d: Department) -> Payload:
    return {"code": d.code, "name": d.name, "parent_code": d.parent_code, "is_active": d.is_active}


def wo_user_payload(u: WhosOffUser) -> Payload:
    return {
        "user_id": str(u.user_id), "staff_code": u.staff_code, "first_name": share(u.first_name),
        "middle_name": share(u.middle_name), "last_name": share(u.last_name), "email": u.email,
        "title": share(u.title), "department_id": u.department_id, "status_id": u.status_id,
        "work_telephone": u.work_telephone, "mobile_telephone": u.mobile_telephone,
        "employment_ended_date": share(_iso(u.employment_ended_date)),
    }  # fmt: skip


def wo_department_payload(d: WhosOffDepartment) -> Payload:
    return {"department_id": str(d.department_id), "name": d.name}


#: what a record's id is called in each source kind's wire format (for reasons an operator reads)
_ID_NAMES = {
    ("infinityhr", "employee"): "EmployeeID", ("infinityhr", "department"): "DepartmentCode",
    ("whosoff", "user"): "user_id", ("whosoff", "department"): "department_id",
}  # fmt: skip


def _collect(
    source: str, kind: str, items: list[tuple[str, Payload]], invalid: list[InvalidRecord]
) -> Pulled:
    """Records by id; an id that appears twice is rejected in every copy (which one is right is unknown),
    and one too long to stage is rejected here, before staging, so that every database behaves alike."""
    out = Pulled(source, kind)
    seen: dict[str, int] = {}
    for rid, _ in items:
        seen[rid] = seen.get(rid, 0) + 1
    for rid, payload in items:
        problem = id_problem(rid, _ID_NAMES.get((source, kind), "id"))
        if problem is not None:
            out.rejects.append(Reject(source, kind, rid, *problem, payload))
        elif seen[rid] > 1:
            out.rejects.append(
                Reject(
                    source,
                    kind,
                    rid,
                    "duplicate_id",
                    f"id {rid!r} appears {seen[rid]} times in one read",
                    payload,
                )
            )
        else:
            out.records[rid] = payload
    for bad in invalid:
        out.rejects.append(Reject(source, kind, bad.record_id, "unparseable", bad.reason, bad.payload))
    return out


# ------------------------------------------------------------------------------------- pulling


async def _timed(
    source: str, kind: str, fn: Callable[[], Awaitable[Pulled]], *, changes: bool = False
) -> Pulled:
    start, started_at = time.monotonic(), dt.datetime.now(dt.UTC)
    try:
        pulled = await fn()
    except (SyncdError, OSError, TimeoutError) as exc:
        pulled = Pulled(source, kind, error=f"{type(exc).__name__}: {exc}")
        log.warning("pull.failed", source=source, kind=kind, changes=changes, error=pulled.error)
    pulled.seconds, pulled.started_at, pulled.changes = time.monotonic() - start, started_at, changes
    if pulled.error is None:
        log.info(
            "pull.done",
            source=source,
            kind=kind,
            changes=changes,
            records=len(pulled.records),
            rejected=len(pulled.rejects),
            seconds=round(pulled.seconds, 3),
        )
    return pulled


async def pull_infinityhr_employees(
    client: InfinityHRClient, progress: Progress = NULL_PROGRESS, changed: DateRange | None = None
) -> Pulled:
    """Every employee, or (``changed``) those changed in that date range."""
    items: list[tuple[str, Payload]] = []
    invalid: list[InvalidRecord] = []
    task = "pull InfinityHR employees" + (" (changes)" if changed else "")
    read = 0

    def on_page(page: EmployeePage) -> None:  # a re-read (the pages disagreed) starts over at 1
        nonlocal read
        if page.page_number == 1:
            read = 0
            items.clear()
            invalid.clear()
        read += len(page.employees) + len(page.invalid)
        # each page becomes payloads at once: the parsed records are not all held as well (memory at 100k)
        items.extend((p["employee_id"], p) for p in map(employee_payload, page.employees))
        invalid.extend(page.invalid)
        log.info("pull.progress", source="infinityhr", kind="employee", page=page.page_number, read=read,
                 total=page.total_count, changes=changed is not None)  # fmt: skip
        progress.update(task, done=read, total=page.total_count)

    # a consistent read only (syncd/vendors/paging.py): else InconsistentReadError, and the source is stale
    await client.read_employee_pages(on_page, changed, keep=False)
    progress.close(task)
    return _collect("infinityhr", "employee", items, invalid)


async def pull_infinityhr_departments(client: InfinityHRClient) -> Pulled:
    depts, invalid = await client.get_departments()
    return _collect("infinityhr", "department", [(d.code, department_payload(d)) for d in depts], invalid)


async def pull_whosoff_users(client: WhosOffClient) -> Pulled:
    users, invalid = await client.get_users(status_id=99)
    items = list(consume(users, lambda u: (str(u.user_id), wo_user_payload(u))))
    return _collect("whosoff", "user", items, invalid)


async def pull_whosoff_departments(client: WhosOffClient) -> Pulled:
    depts, invalid = await client.get_departments()
    items = [(str(d.department_id), wo_department_payload(d)) for d in depts]
    return _collect("whosoff", "department", items, invalid)


async def pull_all(
    ihr: InfinityHRClient,
    wo: WhosOffClient,
    progress: Progress = NULL_PROGRESS,
    *,
    skip: Collection[SourceKind] = (),
    changed: DateRange | None = None,
) -> dict[SourceKind, Pulled]:
    """Both sources at once; departments and employees of InfinityHR one after the other (one session).

    ``skip``: source kinds not read this cycle; ``changed``: InfinityHR's employees changed in that
    date range only (:mod:`syncd.engine.reads`)."""

    def wanted(
        source: str, kind: str, fn: Callable[[], Awaitable[Pulled]], **kw: Any
    ) -> list[Awaitable[Pulled]]:
        return [] if (source, kind) in skip else [_timed(source, kind, fn, **kw)]

    async def infinityhr() -> list[Pulled]:
        out = [await p for p in wanted("infinityhr", "department", lambda: pull_infinityhr_departments(ihr))]
        emps = wanted(
            "infinityhr", "employee", lambda: pull_infinityhr_employees(ihr, progress, changed),
            changes=changed is not None,
        )  # fmt: skip
        return out + [await p for p in emps]

    async def whosoff() -> list[Pulled]:
        return list(
            await asyncio.gather(
                *wanted("whosoff", "user", lambda: pull_whosoff_users(wo)),
                *wanted("whosoff", "department", lambda: pull_whosoff_departments(wo)),
            )
        )

    results = await asyncio.gather(infinityhr(), whosoff())
    return {(p.source, p.kind): p for group in results for p in group}
