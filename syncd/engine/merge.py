"""Staged source records → the directory WORKBOX should hold.  Pure: plain values in, plain values out.

Rules (README "Mapping rules" documents them for operators):

* Members are InfinityHR employees whose ``employment_status`` is ``Active`` or ``Leave``, plus
  ``Terminated`` ones until ``termination_date + sync.delete_grace`` days has come (a terminated
  employee without a date is removed at once).  Member key = ``EmployeeID`` (see :mod:`keys`).
* WhosOff users join employees by ``staff_code`` = ``PayrollEmployeeID``, else by e-mail
  (case-insensitive).  Disabled users (``status_id`` 0) are ignored.  WhosOff fills phones the
  employee lacks (``sync.phone_precedence = "whosoff"`` makes WhosOff win).  Unjoined users become
  members ``wo-<user_id>`` only with ``sync.include_whosoff_only``.
* Departments: key = ``DepartmentCode``, parent = ``ParentDepartmentCode`` (``#`` at the top).  An
  inactive department stays while it has members or kept child departments.
* Grades and positions: one per distinct name used by a member, key derived from the name.
* A record that fails validation is rejected with a specific reason.  A rejected record never causes
  a delete: whatever the ledger holds for its key stays as it is ("frozen").
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.engine import keys

Body = dict[str, Any]
Payload = Mapping[str, Any]
KINDS = ("job-grade", "job-position", "dept", "user")

#: WORKBOX field limits (contract §3.2)
LIMITS = {"name": 100, "emailAddr": 100, "telNo": 30, "cphNo": 100, "dept_name": 100, "grade": 100}
EMAIL_RE = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
MEMBER_STATUSES = ("Active", "Leave")


@dataclass(frozen=True)
class Rules:
    today: dt.date
    delete_grace: int = 0
    include_whosoff_only: bool = False
    whosoff_only_department: str = "whosoff-only"
    name_format: str = "{given} {family}"
    #: "infinityhr" (WhosOff fills gaps) or "whosoff" (WhosOff wins where it has a value)
    phone_precedence: str = "infinityhr"
    grade_order: tuple[str, ...] = ()
    position_order: tuple[str, ...] = ()
    dept_sort_order: str = "0"


@dataclass(frozen=True)
class Reject:
    """A source record that failed validation."""

    source: str
    kind: str
    record_id: str | None
    reason_code: str
    reason: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Sources:
    """Last trusted snapshots: id → normalised payload."""

    employees: Mapping[str, Payload]
    departments: Mapping[str, Payload]
    wo_users: Mapping[str, Payload] = field(default_factory=dict)
    wo_departments: Mapping[str, Payload] = field(default_factory=dict)
    #: records rejected before merge (unparseable, duplicate id): their keys are frozen too
    rejected: tuple[Reject, ...] = ()


@dataclass
class Desired:
    objects: dict[str, dict[str, Body]]
    rejects: list[Reject]
    #: (kind, key) kept at the ledger's body because its source record was rejected
    frozen: set[tuple[str, str]]


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


class _Merger:
    def __init__(self, src: Sources, ledger: Mapping[tuple[str, str], Body], rules: Rules) -> None:
        self.src, self.ledger, self.rules = src, ledger, rules
        self.rejects: list[Reject] = list(src.rejected)
        self.frozen: set[tuple[str, str]] = set()
        self.out: dict[str, dict[str, Body]] = {kind: {} for kind in KINDS}
        self.rejected_depts = {r.record_id for r in src.rejected if r.kind == "department" and r.record_id}

    def reject(
        self, source: str, kind: str, rid: str | None, code: str, reason: str, payload: Payload
    ) -> None:
        self.rejects.append(Reject(source, kind, rid, code, reason, dict(payload)))
        if rid is None:
            return
        if source == "whosoff" and kind == "user":
            self.freeze("user", keys.whosoff_only_key(rid))
            return
        target = {"employee": "user", "department": "dept"}.get(kind)
        if target:
            self.freeze(target, keys.source_key(rid))

    def freeze(self, kind: str, key: str) -> None:
        body = self.ledger.get((kind, key))
        if body is not None:
            self.frozen.add((kind, key))
            self.out[kind][key] = dict(body)

    # ---------------------------------------------------------------------------- departments

    def departments(self) -> dict[str, Payload]:
        """Valid departments by code (cycles, unknown parents and bad names rejected)."""
        ok: dict[str, Payload] = {}
        for code, dept in sorted(self.src.departments.items()):
            name = _clean(dept.get("name"))
            if not name:
                self.reject("infinityhr", "department", code, "missing_name", "department has no Name", dept)
            elif len(name) > LIMITS["dept_name"]:
                self.reject(
                    "infinityhr",
                    "department",
                    code,
                    "field_too_long",
                    f"Name is {len(name)} characters (WORKBOX allows {LIMITS['dept_name']})",
                    dept,
                )
            elif _CONTROL.search(name):
                self.reject(
                    "infinityhr",
                    "department",
                    code,
                    "invalid_characters",
                    "Name contains control or invisible characters",
                    dept,
                )
            else:
                ok[code] = dept
        # unknown parents and cycles; a department under a rejected one is rejected too
        status: dict[str, bool] = {}
        for code in sorted(ok):
            chain: list[str] = []
            cur: str | None = code
            good = True
            while cur is not None and cur not in status:
                if cur in chain:
                    cycle = chain[chain.index(cur) :]
                    text = " → ".join([*cycle, cur])
                    for member in cycle:
                        status[member] = False
                        self.reject(
                            "infinityhr",
                            "department",
                            member,
                            "department_cycle",
                            f"parent chain forms a cycle: {text}",
                            ok[member],
                        )
                    chain = chain[: chain.index(cur)]
                    good = False
                    break
                chain.append(cur)
                parent = _clean(ok[cur].get("parent_code"))
                if parent is not None and parent not in ok:
                    status[cur] = False
                    known = parent in self.src.departments
                    self.reject(
                        "infinityhr",
                        "department",
                        cur,
                        "parent_rejected" if known else "unknown_parent",
                        f"parent department {parent!r} " + ("was rejected" if known else "does not exist"),
                        ok[cur],
                    )
                    chain.pop()
                    good = False
                    break
                cur = parent
            if cur is not None and cur in status:
                good = good and status[cur]
            for member in reversed(chain):
                status[member] = good
                if not good:
                    parent = _clean(ok[member].get("parent_code"))
                    self.reject(
                        "infinityhr",
                        "department",
                        member,
                        "parent_rejected",
                        f"parent department {parent!r} was rejected",
                        ok[member],
                    )
        return {code: dept for code, dept in ok.items() if status.get(code)}

    # -------------------------------------------------------------------------------- members

    def members(self, depts: Mapping[str, Payload]) -> dict[str, tuple[Body, str, Payload]]:
        """key → (body without grade/position keys, source, payload) for every valid member."""
        wo_by_staff: dict[str, Payload] = {}
        wo_by_email: dict[str, Payload] = {}
        for user in self.src.wo_users.values():
            if user.get("status_id") == 0:
                continue
            staff = _clean(user.get("staff_code"))
            if staff:
                wo_by_staff.setdefault(staff, user)
            email = (_clean(user.get("email")) or "").lower()
            if email:
                wo_by_email.setdefault(email, user)
        joined: set[str] = set()
        members: dict[str, tuple[Body, str, Payload]] = {}
        for eid, emp in sorted(self.src.employees.items()):
            email = (_clean(emp.get("work_email")) or "").lower()
            wo = wo_by_staff.get(_clean(emp.get("payroll_employee_id")) or "\0") or wo_by_email.get(email)
            if wo is not None:  # joined even when not a member: never a WhosOff-only member then
                joined.add(str(wo.get("user_id")))
            if not self._is_member(eid, emp):
                continue
            body = self._member_body(eid, emp, wo, depts)
            if body is not None:
                members[keys.source_key(eid)] = (body, "infinityhr", emp)
        if self.rules.include_whosoff_only:
            for uid, user in sorted(self.src.wo_users.items()):
                if user.get("status_id") == 0 or uid in joined:
                    continue
                body = self._whosoff_only_body(uid, user)
                if body is not None:
                    members[keys.whosoff_only_key(uid)] = (body, "whosoff", user)
        return members

    def _is_member(self, eid: str, emp: Payload) -> bool:
        """Active/Leave, or Terminated within the grace period.  An unknown status is rejected (and so
        frozen), never read as "not a member": that would delete a person because of a typo."""
        status = emp.get("employment_status")
        if status in MEMBER_STATUSES:
            return True
        if status != "Terminated":
            self.reject(
                "infinityhr",
                "employee",
                eid,
                "unknown_status",
                f"EmploymentStatus {str(status)[:40]!r} is not Active, Leave or Terminated",
                emp,
            )
            return False
        ended = emp.get("termination_date")
        if not ended:
            return False
        try:
            last_day = dt.date.fromisoformat(str(ended)[:10]) + dt.timedelta(days=self.rules.delete_grace)
        except ValueError:
            self.reject(
                "infinityhr",
                "employee",
                eid,
                "invalid_date",
                f"TerminationDate {str(ended)[:40]!r} is not a date",
                emp,
            )
            return False
        return self.rules.today < last_day

    def _name(self, first: str | None, middle: str | None, family: str | None, preferred: str | None) -> str:
        given = preferred or first or ""
        text = self.rules.name_format.format(
            given=given, first=first or "", middle=middle or "", family=family or ""
        )
        return " ".join(text.split())

    def _check(self, source: str, kind: str, rid: str, body: Body, payload: Payload) -> bool:
        email = body.get("emailAddr") or ""
        if not email:
            self.reject(source, kind, rid, "missing_email", "no work e-mail address", payload)
            return False
        if not EMAIL_RE.fullmatch(email):
            self.reject(
                source,
                kind,
                rid,
                "malformed_email",
                f"work e-mail {email[:120]!r} is not a valid ASCII address",
                payload,
            )
            return False
        if not body.get("name"):
            self.reject(source, kind, rid, "missing_name", "no name", payload)
            return False
        for fld in ("name", "emailAddr", "telNo", "cphNo"):
            value = body.get(fld)
            if value is not None and len(value) > LIMITS[fld]:
                self.reject(
                    source,
                    kind,
                    rid,
                    "field_too_long",
                    f"{fld} is {len(value)} characters (WORKBOX allows {LIMITS[fld]})",
                    payload,
                )
                return False
        for fld in ("name", "telNo", "cphNo", "_grade", "_position"):
            value = body.get(fld)
            if value is not None and _CONTROL.search(value):
                self.reject(
                    source,
                    kind,
                    rid,
                    "invalid_characters",
                    f"{fld.lstrip('_')} contains control or invisible characters",
                    payload,
                )
                return False
        for fld in ("_grade", "_position"):
            value = body.get(fld)
            if value is not None and len(value) > LIMITS["grade"]:
                self.reject(
                    source,
                    kind,
                    rid,
                    "field_too_long",
                    f"job {fld.lstrip('_')} is {len(value)} characters (WORKBOX allows 100)",
                    payload,
                )
                return False
        return True

    def _phones(self, emp: Payload, wo: Payload | None) -> tuple[str | None, str | None]:
        ihr = (_clean(emp.get("work_phone")), _clean(emp.get("mobile_phone")))
        if wo is None:
            return ihr
        whos = (
            _usable(wo.get("work_telephone"), LIMITS["telNo"]),
            _usable(wo.get("mobile_telephone"), LIMITS["cphNo"]),
        )
        first, second = (whos, ihr) if self.rules.phone_precedence == "whosoff" else (ihr, whos)
        return first[0] or second[0], first[1] or second[1]

    def _member_body(
        self, eid: str, emp: Payload, wo: Payload | None, depts: Mapping[str, Payload]
    ) -> Body | None:
        for part in ("first_name", "middle_name", "last_name", "preferred_name"):
            if _CONTROL.search(str(emp.get(part) or "")):
                self.reject(
                    "infinityhr",
                    "employee",
                    eid,
                    "invalid_characters",
                    f"{part} contains control or invisible characters",
                    emp,
                )
                return None
        tel, cph = self._phones(emp, wo)
        body: Body = {
            "name": self._name(
                _clean(emp.get("first_name")),
                _clean(emp.get("middle_name")),
                _clean(emp.get("last_name")),
                _clean(emp.get("preferred_name")),
            ),
            "emailAddr": (_clean(emp.get("work_email")) or "").lower(),
            "telNo": tel,
            "cphNo": cph,
            "_grade": _clean(emp.get("job_grade")),
            "_position": _clean(emp.get("job_title")),
        }
        if not self._check("infinityhr", "employee", eid, body, emp):
            return None
        dept = _clean(emp.get("department_code"))
        if dept is None or dept not in depts:
            rejected = dept in self.src.departments or dept in self.rejected_depts
            code = (
                "missing_department"
                if dept is None
                else ("department_rejected" if rejected else "unknown_department")
            )
            why = (
                "has no DepartmentCode"
                if dept is None
                else f"department {dept!r} " + ("was rejected" if rejected else "does not exist")
            )
            self.reject("infinityhr", "employee", eid, code, why, emp)
            return None
        body["deptExternalKey"] = keys.source_key(dept)
        return body

    def _whosoff_only_body(self, uid: str, user: Payload) -> Body | None:
        body: Body = {
            "name": self._name(
                _clean(user.get("first_name")),
                _clean(user.get("middle_name")),
                _clean(user.get("last_name")),
                None,
            ),
            "emailAddr": (_clean(user.get("email")) or "").lower(),
            "telNo": _clean(user.get("work_telephone")),
            "cphNo": _clean(user.get("mobile_telephone")),
            "_grade": None,
            "_position": None,
            "deptExternalKey": keys.source_key(self.rules.whosoff_only_department),
        }
        return body if self._check("whosoff", "user", uid, body, user) else None

    # --------------------------------------------------------------------------------- emails

    def unique_emails(self, members: dict[str, tuple[Body, str, Payload]]) -> None:
        """A duplicate e-mail stays with the member the ledger already has it for; the rest are rejected."""
        by_email: dict[str, list[str]] = defaultdict(list)
        for key, (body, _, _) in members.items():
            by_email[body["emailAddr"]].append(key)
        # a frozen member keeps the address WORKBOX has for it: nobody else may take it meanwhile
        frozen_holder = {
            str(body.get("emailAddr", "")).lower(): key
            for key, body in self.out["user"].items()
            if ("user", key) in self.frozen
        }
        for email, holders in sorted(by_email.items()):
            frozen = frozen_holder.get(email)
            if frozen is not None and frozen not in holders:
                holders = [*holders, frozen]
            if len(holders) < 2:
                continue
            keeper = frozen or next(
                (
                    k
                    for k in sorted(holders)
                    if (self.ledger.get(("user", k)) or {}).get("emailAddr", "").lower() == email
                ),
                None,
            )
            for key in sorted(holders):
                if key == keeper or key not in members:
                    continue
                _, source, payload = members.pop(key)
                others = ", ".join(sorted(h for h in holders if h != key))
                rid = str(payload.get("employee_id") or payload.get("user_id"))
                kind = "employee" if source == "infinityhr" else "user"
                self.reject(
                    source,
                    kind,
                    rid,
                    "duplicate_email",
                    f"work e-mail {email!r} is also used by {others}"
                    + (f"; {keeper} keeps it" if keeper else "; none of them is in WORKBOX yet"),
                    payload,
                )

    # ---------------------------------------------------------------------------------- build

    def run(self) -> Desired:
        depts = self.departments()
        for rej in self.src.rejected:  # rejected before merge (unparseable, duplicate id): frozen too
            if not rej.record_id:
                continue
            if rej.source == "whosoff" and rej.kind == "user":
                self.freeze("user", keys.whosoff_only_key(rej.record_id))
            elif rej.kind in ("employee", "department"):
                self.freeze("user" if rej.kind == "employee" else "dept", keys.source_key(rej.record_id))
        members = self.members(depts)
        self.unique_emails(members)

        grades: dict[str, str] = {}
        positions: dict[str, str] = {}
        users = self.out["user"]
        for key, (body, _, _) in sorted(members.items()):
            if ("user", key) in self.frozen:
                continue
            grade, position = body.pop("_grade"), body.pop("_position")
            if grade:
                body["gradeExternalKey"] = grades.setdefault(grade, keys.grade_key(grade))
            if position:
                body["positionExternalKey"] = positions.setdefault(position, keys.position_key(position))
            users[key] = {k: v for k, v in body.items() if v is not None}

        for name, key in grades.items():
            self.out["job-grade"][key] = {"name": name, "sortOrd": _order(name, self.rules.grade_order)}
        for name, key in positions.items():
            self.out["job-position"][key] = {"name": name, "sortOrd": _order(name, self.rules.position_order)}

        self._build_departments(depts)
        self._keep_referenced()
        return Desired(self.out, self.rejects, self.frozen)

    def _build_departments(self, depts: Mapping[str, Payload]) -> None:
        used = {u.get("deptExternalKey") for u in self.out["user"].values()}
        children: dict[str | None, list[str]] = defaultdict(list)
        for code, dept in depts.items():
            children[_clean(dept.get("parent_code"))].append(code)
        kept: set[str] = set()

        def keep(code: str) -> bool:
            keep_children = [keep(child) for child in sorted(children.get(code, ()))]
            if depts[code].get("is_active", True) or keys.source_key(code) in used or any(keep_children):
                kept.add(code)
                return True
            return False

        for root in sorted(children.get(None, ())):
            keep(root)
        dept_out = self.out["dept"]
        for code in sorted(kept):
            key = keys.source_key(code)
            if ("dept", key) in self.frozen:
                continue
            parent = _clean(depts[code].get("parent_code"))
            dept_out[key] = {
                "name": _clean(depts[code].get("name")),
                "sortOrd": self.rules.dept_sort_order,
                "uprDeptExternalKey": keys.source_key(parent) if parent else "#",
            }
        wo_key = keys.source_key(self.rules.whosoff_only_department)
        if wo_key in used and wo_key not in dept_out:
            dept_out[wo_key] = {
                "name": self.rules.whosoff_only_department,
                "sortOrd": self.rules.dept_sort_order,
                "uprDeptExternalKey": "#",
            }

    def _keep_referenced(self) -> None:
        """Frozen members may reference objects no longer derived: keep those at the ledger's body."""
        refs = (
            ("deptExternalKey", "dept"),
            ("gradeExternalKey", "job-grade"),
            ("positionExternalKey", "job-position"),
        )
        pending = [body for body in self.out["user"].values()]
        pending += [body for body in self.out["dept"].values()]
        while pending:
            body = pending.pop()
            for field_name, kind in (*refs, ("uprDeptExternalKey", "dept")):
                ref = body.get(field_name)
                if ref and ref != "#" and ref not in self.out[kind] and (kind, ref) in self.ledger:
                    self.freeze(kind, ref)
                    pending.append(self.out[kind][ref])


def _usable(value: Any, limit: int) -> str | None:
    """A WhosOff value only fills a gap if it would pass validation; a bad one is ignored."""
    text = _clean(value)
    return text if text is not None and len(text) <= limit and not _CONTROL.search(text) else None


def _order(name: str, order: tuple[str, ...]) -> int:
    """``sortOrd`` from configuration only: the name's 1-based place in the list, else 1000."""
    return order.index(name) + 1 if name in order else 1000


def merge(sources: Sources, ledger: Mapping[tuple[str, str], Body], rules: Rules) -> Desired:
    """The desired WORKBOX directory for ``sources``, given what the ledger records as pushed."""
    return _Merger(sources, ledger, rules).run()
