# ruff: noqa: E501
"""Hostile input corpus: bad payloads and bad records from both sources, and bad config files.

One sandbox (``include_whosoff_only = true``, so WhosOff-only users are validated too), one database,
one baseline sync.  Each case changes the sources (``sb.company`` records, a ``corrupt`` fault, or a
replaced response payload), runs one cycle in-process and asserts its expected outcome:

* ``quarantined(code)`` — the record is rejected with that reason code, the run exits 0, nothing is
  deleted;
* ``failed_clean`` — the run exits 1 (a stale source), nothing is deleted or changed in WORKBOX;
* ``verbatim`` — the record syncs, its field holds exactly the expected text;
* ``no_change`` — the run sends no WORKBOX request (e.g. an NFD spelling of an NFC name);
* ``converges`` — the run (or the one after it) ends with WORKBOX equal to the baseline plus the
  change, without duplicates.

Then the sources are restored and a cycle must bring WORKBOX back to the baseline (the record leaves
the quarantine).  Config cases run ``syncd --run-once`` (in-process ``cli.main``) on a broken config:
exit 2, one line on stderr, naming the key, no secret in it.
"""

from __future__ import annotations

import asyncio
import copy
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.sandbox.data import Department, WhosOffUser
from tests.support.config import CAMPAIGN, CAMPAIGN_PROCESS, config_text, settings_for
from tests.support.process import cli_in_process

from .common import (
    database,
    db_label,
    dump_tables,
    quiet_libraries,
    read_journal,
    reset_logging,
    table,
    workbox_state,
)
from .leaks import LeakWatch

Say = Callable[[str], None]
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
IHR = "http://www.infinityhr.com/webservices/"


@dataclass
class Case:
    name: str
    source: str  # infinityhr | whosoff | workbox | config
    setup: Callable[[Sandbox], Any]
    expect: str  # quarantined | failed_clean | verbatim | no_change | converges | config_error
    code: str | None = None  # reason code, or the key a config error must name
    check: Callable[[Sandbox, Any], str | None] | None = None  # extra check; returns a problem


@dataclass
class Outcome:
    case: Case
    actual: str
    ok: bool
    note: str = ""


@dataclass
class HostileReport:
    db: str
    cases: list[Outcome] = field(default_factory=list)
    leak_hits: list[tuple[str, str, str]] = field(default_factory=list)
    leak_values: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(o.ok for o in self.cases)

    def table(self) -> str:
        rows = [
            [i, o.case.source, o.case.name, f"{o.case.expect}" + (f" {o.case.code}" if o.case.code else ""),
             o.actual, "ok" if o.ok else "FAIL" + (f": {o.note}" if o.note else "")]
            for i, o in enumerate(self.cases, 1)
        ]  # fmt: skip
        return table(["#", "source", "case", "expected", "actual", "result"], rows)


# --------------------------------------------------------------------------------- case helpers


def _members(sb: Sandbox) -> list[Any]:
    c = sb.company
    emps = [
        e for e in c.employee_list() if e.status == "Active" and c.departments[e.department_code].is_active
    ]
    grades = [e.job_grade for e in emps]
    titles = [e.job_title for e in emps]
    return [e for e in emps if grades.count(e.job_grade) > 2 and titles.count(e.job_title) > 2]


def _member(sb: Sandbox, n: int = 0) -> Any:
    return _members(sb)[n]


def _hire(sb: Sandbox, **fields: Any) -> Any:
    base = _member(sb)
    res = sb.mutate("hire", department_code=base.department_code, job_grade=base.job_grade, whosoff=False)
    emp = sb.company.employees[res["employee_id"]]
    emp.job_grade, emp.job_title = base.job_grade, base.job_title
    for k, v in fields.items():
        setattr(emp, k, v)
    sb.company.invalidate()
    return emp


def _set(**fields: Any) -> Callable[[Sandbox], Any]:
    def setup(sb: Sandbox) -> Any:
        emp = _member(sb, 3)
        for k, v in fields.items():
            setattr(emp, k, v)
        sb.company.invalidate()
        return emp

    return setup


def _hire_with(**fields: Any) -> Callable[[Sandbox], Any]:
    return lambda sb: _hire(sb, **fields)


def wo_only(sb: Sandbox) -> WhosOffUser:
    return next(u for u in sb.company.whosoff_users.values() if u.employee_id is None and u.status_id == 1)


def _wo_set(**fields: Any) -> Callable[[Sandbox], Any]:
    def setup(sb: Sandbox) -> Any:
        user = wo_only(sb)
        for k, v in fields.items():
            setattr(user, k, v)
        return user

    return setup


def _new_wo_user(**fields: Any) -> Callable[[Sandbox], Any]:
    def setup(sb: Sandbox) -> Any:
        twin = copy.copy(wo_only(sb))
        twin.email_contact, twin.staff_code = "new.wo.user@acme.example", None
        for k, v in fields.items():
            setattr(twin, k, v)
        sb.company.whosoff_users[max(sb.company.whosoff_users) + 2000] = twin
        return twin

    return setup


def _new_dept(sb: Sandbox, code: str, parent: str | None, name: str | None = None) -> Department:
    d = Department(code, name or f"Hostile {code}", parent, True)
    sb.company.departments[code] = d
    return d


class _BadDate:
    """A HireDate that serialises as garbage (the sandbox calls ``isoformat()``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def isoformat(self) -> str:
        return self.text


def _name_is(value: str, who: str = "emp") -> Callable[[Sandbox, Any], str | None]:
    def check(sb: Sandbox, emp: Any) -> str | None:
        body = workbox_state(sb).get(("user", emp.employee_id))
        if body is None:
            return "member not in WORKBOX"
        return None if body["name"] == value else f"name {body['name']!r} != {value!r}"

    return check


def _ihr_payload(payload: bytes) -> Callable[[Sandbox], Any]:
    """Every InfinityHR data response (not Authenticate) becomes ``payload``."""

    def setup(sb: Sandbox) -> Any:
        svc = sb.infinityhr
        original = svc._xml

        def xml(method: str, result: Any, corrupt: str | None = None) -> web.Response:
            if method == "Authenticate":
                return original(method, result, corrupt)
            return web.Response(status=200, body=payload, headers={"Content-Type": "text/xml; charset=utf-8"})

        svc._xml = xml  # type: ignore[method-assign]
        return lambda: setattr(svc, "_xml", original)

    return setup


def wo_payload(payload: bytes, status: int = 200) -> Callable[[Sandbox], Any]:
    def setup(sb: Sandbox) -> Any:
        svc = sb.whosoff
        original = svc._data

        async def data(request: web.Request, _: list[Any]) -> web.StreamResponse:
            return web.Response(status=status, body=payload, headers={"Content-Type": "application/json"})

        svc._data = data  # type: ignore[method-assign]
        return lambda: setattr(svc, "_data", original)

    return setup


def _corrupt(vendor: str, kind: str, count: int = 100) -> Callable[[Sandbox], Any]:
    def setup(sb: Sandbox) -> Any:
        sb.faults[vendor].corrupt, sb.faults[vendor].corrupt_count = kind, count
        return lambda: setattr(sb.faults[vendor], "corrupt", None)

    return setup


def _envelope(inner: str, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{prolog}<soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
        f'<GetDepartmentsResponse xmlns="{IHR}"><GetDepartmentsResult>{inner}</GetDepartmentsResult>'
        "</GetDepartmentsResponse></soap:Body></soap:Envelope>"
    ).encode()


def _dup_ihr_id(sb: Sandbox) -> Any:
    emp = _member(sb, 4)
    clone = copy.copy(emp)
    clone.first_name = "Impostor"
    sb.company._employee_list = sorted([*sb.company.employee_list(), clone], key=lambda e: e.employee_id)
    return emp


def _dup_wo_id(sb: Sandbox) -> Any:
    user = wo_only(sb)
    twin = copy.copy(user)
    twin.first_name = "Twin"
    sb.company.whosoff_users[max(sb.company.whosoff_users) + 1000] = twin
    return user


def _cycle(sb: Sandbox) -> Any:
    a = _new_dept(sb, "HCYA", "HCYB")
    _new_dept(sb, "HCYB", "HCYA")
    return _hire(sb, department_code=a.code)


def _dup_email(upper: bool) -> Callable[[Sandbox], Any]:
    def setup(sb: Sandbox) -> Any:
        email = _member(sb, 5).work_email.strip().lower()
        return _hire(sb, work_email=email.upper() if upper else email)

    return setup


def _two_new_same_email(sb: Sandbox) -> Any:
    first = _hire(sb, work_email="shared.new@acme.example")
    _hire(sb, work_email="Shared.New@acme.example")
    return first


def _nfd_name(sb: Sandbox) -> Any:
    emp = next(e for e in _members(sb) if unicodedata.normalize("NFD", e.first_name) != e.first_name)
    emp.first_name = unicodedata.normalize("NFD", emp.first_name)
    return emp


def _upper_spaced_email(sb: Sandbox) -> Any:
    emp = _member(sb, 6)
    emp.work_email = f"  {emp.work_email.strip().upper()}  "
    return emp


def _lookalike_existing(sb: Sandbox) -> Any:
    emp = _member(sb, 7)
    emp.work_email = (
        emp.work_email.replace("a", "\u0430", 1) if "a" in emp.work_email else "\u0430" + emp.work_email
    )
    return emp


SQL = "O'Brien'); DROP TABLE ledger; --"
SHELL = "$(touch /tmp/syncd-pwned) `id` | rm -rf ~ & ; > /dev/null"
HUGE = "A" * 2_000_000


def deep_json() -> bytes:
    return b'{"Data": ' + b"[" * 200_000 + b"]" * 200_000 + b', "Errors": []}'


def cases() -> list[Case]:
    q, fc = "quarantined", "failed_clean"
    return [
        # ---- InfinityHR payloads
        Case(
            "billion laughs (entity expansion)", "infinityhr", _corrupt("infinityhr", "entity_expansion"), fc
        ),
        Case("malformed XML", "infinityhr", _corrupt("infinityhr", "malformed"), fc),
        Case("truncated gzip", "infinityhr", _corrupt("infinityhr", "truncated_gzip"), fc),
        Case(
            "external entity (XXE file:///etc/passwd)",
            "infinityhr",
            _ihr_payload(
                _envelope(
                    "<Departments><DepartmentInfo><DepartmentCode>&xxe;</DepartmentCode></DepartmentInfo></Departments>",
                    '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
                )
            ),
            fc,
        ),
        Case(
            "external DTD",
            "infinityhr",
            _ihr_payload(
                _envelope("<Departments/>", '<!DOCTYPE soap:Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">')
            ),
            fc,
        ),
        Case(
            "internal DTD",
            "infinityhr",
            _ihr_payload(_envelope("<Departments/>", "<!DOCTYPE x [<!ELEMENT x ANY>]>")),
            fc,
        ),
        Case(
            "huge text node (12 MB)",
            "infinityhr",
            _ihr_payload(
                _envelope(
                    "<Departments><DepartmentInfo><DepartmentCode>D1</DepartmentCode><Name>"
                    + "x" * 12_000_000
                    + "</Name></DepartmentInfo></Departments>"
                )
            ),
            fc,
        ),
        Case(
            "deeply nested elements",
            "infinityhr",
            _ihr_payload(_envelope("<a>" * 50_000 + "</a>" * 50_000)),
            fc,
        ),
        Case(
            "HTML error page with 200",
            "infinityhr",
            _ihr_payload(b"<html><body>Service Unavailable</body></html>"),
            fc,
        ),
        Case(
            "invalid UTF-8",
            "infinityhr",
            _ihr_payload(
                _envelope("<Departments/>").replace(b"<Departments/>", b"<Departments>\xff\xfe</Departments>")
            ),
            fc,
        ),
        # ---- WhosOff payloads
        Case("malformed JSON", "whosoff", _corrupt("whosoff", "malformed"), fc),
        Case("truncated gzip", "whosoff", _corrupt("whosoff", "truncated_gzip"), fc),
        Case("entity expansion (as malformed JSON)", "whosoff", _corrupt("whosoff", "entity_expansion"), fc),
        Case(
            "Data is an object, not an array",
            "whosoff",
            wo_payload(b'{"Data": {"user_id": 1}, "Errors": []}'),
            fc,
        ),
        Case("JSON nested 200k deep", "whosoff", wo_payload(deep_json()), fc),
        Case("HTML with 200", "whosoff", wo_payload(b"<html>maintenance</html>"), fc),
        # ---- WORKBOX answers
        Case(
            "malformed success body",
            "workbox",
            lambda sb: (_corrupt("workbox", "malformed", 3)(sb), _hire(sb))[1],
            "converges",
        ),
        Case(
            "truncated gzip success body",
            "workbox",
            lambda sb: (_corrupt("workbox", "truncated_gzip", 3)(sb), _hire(sb))[1],
            "converges",
        ),
        # ---- InfinityHR records
        Case(
            "C1 control character in name",
            "infinityhr",
            _hire_with(first_name="Ann\x9be"),
            q,
            "invalid_characters",
        ),
        Case(
            "zero-width space in name",
            "infinityhr",
            _hire_with(first_name="Jo\u200bhn"),
            q,
            "invalid_characters",
        ),
        Case(
            "bidi override in name", "infinityhr", _hire_with(last_name="\u202etxet"), q, "invalid_characters"
        ),
        Case("missing work e-mail", "infinityhr", _hire_with(work_email=""), q, "missing_email"),
        Case("malformed e-mail", "infinityhr", _hire_with(work_email="not-an-email"), q, "malformed_email"),
        Case(
            "Cyrillic 'а' lookalike e-mail (new hire)",
            "infinityhr",
            _hire_with(work_email="j\u0430ne.doe@acme.example"),
            q,
            "malformed_email",
        ),
        Case(
            "Cyrillic lookalike e-mail (existing member, kept)",
            "infinityhr",
            _lookalike_existing,
            q,
            "malformed_email",
        ),
        Case(
            "NFD e-mail (é decomposed)",
            "infinityhr",
            _hire_with(work_email="jose\u0301@acme.example"),
            q,
            "malformed_email",
        ),
        Case(
            "NFC e-mail (é)",
            "infinityhr",
            _hire_with(work_email="jos\u00e9@acme.example"),
            q,
            "malformed_email",
        ),
        Case(
            "fullwidth e-mail",
            "infinityhr",
            _hire_with(work_email="\uff4a\uff41\uff4e\uff45@acme.example"),
            q,
            "malformed_email",
        ),
        Case("same e-mail upper-cased and padded", "infinityhr", _upper_spaced_email, "no_change"),
        Case("NFD spelling of an NFC name", "infinityhr", _nfd_name, "no_change"),
        Case(
            "NFD name on a new hire → NFC",
            "infinityhr",
            _hire_with(first_name=unicodedata.normalize("NFD", "Renée"), last_name="Nfd"),
            "verbatim",
            check=_name_is("Renée Nfd"),
        ),
        Case(
            "SQL metacharacters in name",
            "infinityhr",
            _hire_with(first_name="Bobby", last_name=SQL),
            "verbatim",
            check=_name_is(f"Bobby {SQL}"),
        ),
        Case(
            "shell metacharacters in name",
            "infinityhr",
            _hire_with(first_name="Sh", last_name=SHELL),
            "verbatim",
            check=_name_is(f"Sh {SHELL}"),
        ),
        Case(
            "emoji and RTL script in name",
            "infinityhr",
            _hire_with(first_name="محمد", last_name="😀"),
            "verbatim",
            check=_name_is("محمد 😀"),
        ),
        Case(
            "name of 101 characters",
            "infinityhr",
            _hire_with(first_name="L", last_name="L" * 99),
            q,
            "field_too_long",
        ),
        Case("2 MB text node in a name", "infinityhr", _hire_with(last_name=HUGE), q, "field_too_long"),
        Case(
            "work phone of 31 characters",
            "infinityhr",
            _hire_with(work_phone="+82-2-" + "1" * 25),
            q,
            "field_too_long",
        ),
        Case(
            "e-mail of 101 characters",
            "infinityhr",
            _hire_with(work_email="a" * 88 + "@acme.example"),
            q,
            "field_too_long",
        ),
        Case(
            "no name at all",
            "infinityhr",
            _hire_with(first_name="", last_name="", preferred_name=None, middle_name=None),
            q,
            "missing_name",
        ),
        Case(
            "duplicate e-mail (the member in WORKBOX keeps it)",
            "infinityhr",
            _dup_email(False),
            q,
            "duplicate_email",
        ),
        Case("duplicate e-mail differing in case", "infinityhr", _dup_email(True), q, "duplicate_email"),
        Case("two new hires share an e-mail", "infinityhr", _two_new_same_email, q, "duplicate_email"),
        Case("duplicate EmployeeID", "infinityhr", _dup_ihr_id, q, "duplicate_id"),
        Case(
            "HireDate is not a date",
            "infinityhr",
            _hire_with(hire_date=_BadDate("yesterday")),
            q,
            "unparseable",
        ),
        Case("EmployeeID missing", "infinityhr", _hire_with(employee_id=""), q, "unparseable"),
        Case("department cycle A→B→A", "infinityhr", _cycle, q, "department_cycle"),
        Case("member of a department in a cycle", "infinityhr", _cycle, q, "department_rejected"),
        Case(
            "department is its own parent",
            "infinityhr",
            lambda sb: _new_dept(sb, "HSELF", "HSELF"),
            q,
            "department_cycle",
        ),
        Case(
            "unknown parent department",
            "infinityhr",
            lambda sb: _new_dept(sb, "HORPH", "NOPE"),
            q,
            "unknown_parent",
        ),
        Case(
            "member of an unknown department",
            "infinityhr",
            _hire_with(department_code="NOPE"),
            q,
            "unknown_department",
        ),
        Case(
            "control character in department name",
            "infinityhr",
            lambda sb: _new_dept(sb, "HCTL", None, "Ops\u0085Team"),
            q,
            "invalid_characters",
        ),
        Case(
            "department name of 101 characters",
            "infinityhr",
            lambda sb: _new_dept(sb, "HLONG", None, "D" * 101),
            q,
            "field_too_long",
        ),
        Case(
            "SQL metacharacters in department name",
            "infinityhr",
            lambda sb: _new_dept(sb, "HSQL", None, "x'; DELETE FROM ledger; --"),
            "verbatim",
            check=lambda sb, _: (
                None
                if workbox_state(sb).get(("dept", "HSQL"), {}).get("name") == "x'; DELETE FROM ledger; --"
                else "department name changed"
            ),
        ),
        # ---- WhosOff records (WhosOff-only users are members here)
        Case(
            "user_id is not an integer (new user)", "whosoff", _new_wo_user(user_id="abc"), q, "unparseable"
        ),
        Case("status_id is a string", "whosoff", _wo_set(status_id="yes"), q, "unparseable"),
        Case("duplicate user_id", "whosoff", _dup_wo_id, q, "duplicate_id"),
        Case(
            "ESC control character in name",
            "whosoff",
            _wo_set(first_name="A\x1b[31mred"),
            q,
            "invalid_characters",
        ),
        Case("NUL in name", "whosoff", _wo_set(last_name="Nul\x00l"), q, "invalid_characters"),
        Case("malformed e-mail", "whosoff", _wo_set(email_contact="@@"), q, "malformed_email"),
        Case(
            "Cyrillic lookalike e-mail",
            "whosoff",
            _wo_set(email_contact="p\u0430ul@acme.example"),
            q,
            "malformed_email",
        ),
        Case("name of 10 000 characters", "whosoff", _wo_set(last_name="W" * 10_000), q, "field_too_long"),
        Case(
            "department_id is a list",
            "whosoff",
            lambda sb: setattr(next(iter(sb.company.whosoff_departments.values())), "department_id", [1]),
            q,
            "unparseable",
        ),
    ]


# ------------------------------------------------------------------------------------------ run


def _snapshot(sb: Sandbox) -> dict[str, Any]:
    c = sb.company
    return {
        n: copy.deepcopy(getattr(c, n))
        for n in ("employees", "departments", "whosoff_users", "whosoff_departments")
    }


def _restore(sb: Sandbox, snap: dict[str, Any]) -> None:
    c = sb.company
    for name, value in snap.items():
        d = getattr(c, name)
        d.clear()
        d.update(copy.deepcopy(value))
    c.invalidate()
    for f in sb.faults.values():
        f.corrupt = None


async def _run_case(ctx: SyncContext, sb: Sandbox, case: Case, baseline: dict[Any, Any]) -> Outcome:
    before_req = len(sb.request_log)
    before = workbox_state(sb)
    token = case.setup(sb)
    undo = token if callable(token) else None
    target = token if not callable(token) else None
    try:
        async with asyncio.timeout(120):
            report = await run_cycle(ctx)
    finally:
        if undo:
            undo()
    wb_reqs = [e for e in sb.request_log[before_req:] if e["vendor"] == "workbox"]
    deletes = [e for e in wb_reqs if e["method"] == "DELETE"]
    codes = sorted({r.reason_code for r in report.rejects})
    actual = (
        f"exit {report.exit_code}"
        + (f", {', '.join(codes)}" if codes else "")
        + (f", {len(deletes)} deleted" if deletes else "")
    )
    problem: str | None = None
    if case.expect == "quarantined":
        if case.code not in codes:
            problem = f"no {case.code} reject"
        elif report.exit_code != 0:
            problem = "run did not exit 0"
        elif deletes:
            problem = "something was deleted"
    elif case.expect == "failed_clean":
        if report.exit_code != 1 or not report.stale:
            problem = "run did not fail as stale"
        elif workbox_state(sb) != before:
            problem = "WORKBOX changed"
    elif case.expect == "no_change":
        if report.exit_code != 0 or wb_reqs:
            problem = f"{len(wb_reqs)} WORKBOX requests"
    elif case.expect == "verbatim":
        problem = "run did not exit 0" if report.exit_code != 0 else None
    elif case.expect == "converges":
        if workbox_state(sb).get(("user", target.employee_id)) is None:
            async with asyncio.timeout(120):
                again = await run_cycle(ctx)
            actual += f"; next run exit {again.exit_code}"
        if ("user", target.employee_id) not in workbox_state(sb):
            problem = "member never arrived"
        posts = [e for e in sb.request_log[before_req:] if e["method"] == "POST" and e["status"] == 201
                 and e["raw_path"].endswith("/" + target.employee_id)]  # fmt: skip
        if len(posts) > 1:
            problem = "created twice"
    if problem is None and case.check is not None:
        problem = case.check(sb, target)
    return Outcome(case, actual, problem is None, problem or "")


async def hostile_campaign(db: str, workdir: Path, *, employees: int = 40, say: Say = print) -> HostileReport:
    workdir.mkdir(parents=True, exist_ok=True)
    out = HostileReport(db)
    async with (
        run_sandbox(SandboxOptions(employees=employees, seed=5, port=0)) as sb,
        database(db, workdir) as url,
    ):
        watch = LeakWatch(sb)
        # records come and go around a small baseline: the completeness guard (tested in tests/engine)
        # would distrust a read that drops the 2 added departments of 5, so it is widened here
        settings = settings_for(
            sb, url, base=CAMPAIGN, sync={"include_whosoff_only": True, "max_source_shrink": 0.9}
        )
        log_path = workdir / f"hostile-{db_label(db)}.log"
        from syncd.logging import configure_logging

        with log_path.open("w") as stream:
            configure_logging("debug", "json", secrets=settings.secret_values(), stream=stream)
            quiet_libraries()
            try:
                async with SyncContext.open(settings) as ctx:
                    first = await run_cycle(ctx)
                    assert first.exit_code == 0, first.message()
                    baseline = workbox_state(sb)
                    snap = _snapshot(sb)
                    for case in cases():
                        try:
                            outcome = await _run_case(ctx, sb, case, baseline)
                        except Exception as exc:
                            outcome = Outcome(
                                case, f"raised {type(exc).__name__}: {str(exc)[:80]}", False, "run raised"
                            )
                        watch.observe()
                        _restore(sb, snap)
                        async with asyncio.timeout(120):
                            back = await run_cycle(ctx)
                        if workbox_state(sb) != baseline or back.exit_code != 0:
                            outcome.ok = False
                            outcome.note += " (restoring the source did not restore WORKBOX)"
                            baseline = workbox_state(sb)
                        out.cases.append(outcome)
                        say(
                            f"  {'ok  ' if outcome.ok else 'FAIL'} {case.source:10s} {case.name}: {outcome.actual} {outcome.note}"
                        )
                    ledger, _ = await read_journal(url)
                    if ledger != workbox_state(sb):
                        out.cases.append(
                            Outcome(
                                Case(
                                    "ledger == WORKBOX after the corpus", "engine", lambda sb: None, "match"
                                ),
                                "mismatch",
                                False,
                            )
                        )
            finally:
                reset_logging()
        out.cases.extend(config_cases(sb, url, workdir))
        texts = {log_path.name: log_path.read_text(errors="replace"), "database": await dump_tables(url)}
        out.leak_hits, out.leak_values = watch.scan(texts), watch.counts()
    return out


# ---------------------------------------------------------------------------------------- config


def config_cases(sb: Sandbox, db_url: str, workdir: Path) -> list[Outcome]:
    good = config_text(sb, db_url, base=(CAMPAIGN, CAMPAIGN_PROCESS))
    secret_file = workdir / "secret_key"
    secret_file.write_text(sb.credentials["workbox"]["secret_key"])
    os.chmod(secret_file, 0o644)
    key_line = f'secret_key = "{sb.credentials["workbox"]["secret_key"]}"'
    variants: list[tuple[str, str, str, dict[str, str]]] = [
        (
            "typo in a key (sync.max_delets)",
            good.replace("max_deletes = 1000", "max_delets = 1000"),
            "max_delets",
            {},
        ),
        ("typo in a section ([workbx])", good + '\n[workbx]\nurl = "http://x"\n', "workbx", {}),
        (
            'wrong type (max_deletes = "lots")',
            good.replace("max_deletes = 1000", 'max_deletes = "lots"'),
            "max_deletes",
            {},
        ),
        (
            "out of range (max_delete_ratio = 2)",
            good.replace("max_delete_ratio = 1.0", "max_delete_ratio = 2.0"),
            "max_delete_ratio",
            {},
        ),
        (
            "world-readable secret file",
            good.replace(key_line, f'secret_key_file = "{secret_file}"'),
            "secret_key_file",
            {},
        ),
        (
            "missing secret file",
            good.replace(key_line, 'secret_key_file = "/nonexistent/secret"'),
            "secret_key_file",
            {},
        ),
        ("malformed TOML", good.replace("[sync]", '[sync\nx = "unterminated'), "line", {}),
        (
            "missing required key (workbox.company_id)",
            "\n".join(ln for ln in good.splitlines() if not ln.startswith("company_id")),
            "company_id",
            {},
        ),
        (
            "URL with a bad scheme",
            good.replace(f'url = "{sb.workbox_url}"', 'url = "ftp://workbox.example"'),
            "url",
            {},
        ),
        ("environment override of the wrong type", good, "max_deletes", {"SYNCD_SYNC__MAX_DELETES": "abc"}),
    ]
    secrets = [
        v for vendor in sb.credentials.values() for k, v in vendor.items() if "pass" in k or "secret" in k
    ]
    out: list[Outcome] = []
    for name, text, key, env in variants:
        path = workdir / "bad.toml"
        path.write_text(text)
        code, err = cli_in_process(["--config", str(path), "--run-once"], env)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        leaked = [s for s in secrets if s in err]
        problem = None
        if code != 2:
            problem = f"exit {code}"
        elif len(lines) != 1:
            problem = f"{len(lines)} lines on stderr"
        elif key not in lines[0]:
            problem = f"does not name {key}"
        elif leaked:
            problem = "a secret is in the message"
        case = Case(name, "config", lambda sb: None, "config_error", key)
        out.append(Outcome(case, f"exit {code}: {(lines or [''])[0][:110]}", problem is None, problem or ""))
    return out
