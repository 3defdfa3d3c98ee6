"""Staged source records → the directory WORKBOX should hold.  Pure: plain values in, plain values out.

Rules (README "Mapping rules" documents them for operators):

* Members are InfinityHR employees whose ``employment_status`` is ``Active`` or ``Leave``, plus
  ``Terminated`` ones until ``termination_date + sync.delete_grace`` days has come (a terminated
  employee without a date is removed at once).  Member key = ``EmployeeID`` (see :mod:`keys`).
* WhosOff users join employees by ``staff_code`` = ``PayrollEmployeeID``, else by e-mail
  (case-insensitive).  Disabled users (``status_id`` 0) are ignored.  WhosOff fills phones the
  employee lacks (``sync.phone_precedence = "whosoff"`` makes WhosOff win).  Unjoined users become
  members ``wo-<user_id>`` only with ``sync.include_whosoff_only``.
* Departments: the tree rules are in :mod:`syncd.engine.departments`.
* Grades and positions: one per distinct name used by a member, key derived from the name.
* A record that fails validation (:mod:`syncd.engine.validate`) is rejected with a specific reason.
  A rejected record never causes a delete: whatever the ledger holds for its key stays as it is ("frozen").
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from syncd.engine import keys
from syncd.engine.departments import department_body, kept_departments, valid_departments
from syncd.engine.validate import (
    LIMITS,
    Body,
    Payload,
    Reject,
    clean,
    member_problem,
    name_parts_problem,
    usable,
)

KINDS = ("job-grade", "job-position", "dept", "user")
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
    #: optional member fields every member carries (``workbox.member_defaults``)
    member_fields: tuple[tuple[str, str], ...] = ()


#: the quarantine's reason for a member held back by a collision (:mod:`syncd.engine.collisions`)
UNMAPPED = "unmapped_in_workbox"


@dataclass(frozen=True)
class Collided:
    """A member WORKBOX refused because one it holds unmapped has the e-mail address ``email``."""

    #: lower-cased
    email: str
    #: the quarantine's reason (what happened, and the commands that map the member)
    reason: str
    #: not due for a retry: held back (not created, not changed; never deleted)
    hold: bool


@dataclass(frozen=True)
class Sources:
    """Last trusted snapshots: id → normalised payload."""

    employees: Mapping[str, Payload]
    departments: Mapping[str, Payload]
    wo_users: Mapping[str, Payload] = field(default_factory=dict)
    wo_departments: Mapping[str, Payload] = field(default_factory=dict)
    #: records rejected before merge (unparseable, duplicate id): their keys are frozen too
    rejected: tuple[Reject, ...] = ()
    #: member key → its collision with a member WORKBOX holds unmapped
    collided: Mapping[str, Collided] = field(default_factory=dict)


@dataclass
class Desired:
    objects: dict[str, dict[str, Body]]
    rejects: list[Reject]
    #: (kind, key) kept at the ledger's body because its source record was rejected
    frozen: set[tuple[str, str]]


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

    def departments(self) -> dict[str, Payload]:
        """Valid departments by code (cycles, unknown parents and bad names rejected)."""
        ok, rejects = valid_departments(self.src.departments)
        for code, reason_code, reason, payload in rejects:
            self.reject("infinityhr", "department", code, reason_code, reason, payload)
        return ok

    # -------------------------------------------------------------------------------- members

    def members(self, depts: Mapping[str, Payload]) -> dict[str, tuple[Body, str, Payload]]:
        """key → (body without grade/position keys, source, payload) for every valid member."""
        wo_by_staff: dict[str, Payload] = {}
        wo_by_email: dict[str, Payload] = {}
        for user in self.src.wo_users.values():
            if user.get("status_id") == 0:
                continue
            staff = clean(user.get("staff_code"))
            if staff:
                wo_by_staff.setdefault(staff, user)
            email = (clean(user.get("email")) or "").lower()
            if email:
                wo_by_email.setdefault(email, user)
        joined: set[str] = set()
        members: dict[str, tuple[Body, str, Payload]] = {}
        for eid, emp in sorted(self.src.employees.items()):
            email = (clean(emp.get("work_email")) or "").lower()
            wo = wo_by_staff.get(clean(emp.get("payroll_employee_id")) or "\0") or wo_by_email.get(email)
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
            day = dt.date.fromisoformat(str(ended)[:10])
        except ValueError:
            why = f"TerminationDate {str(ended)[:40]!r} is not a date"
            self.reject("infinityhr", "employee", eid, "invalid_date", why, emp)
            return False
        try:
            last_day = day + dt.timedelta(days=self.rules.delete_grace)
        except OverflowError:  # e.g. 9999-12-31 + 1 day: no date to compare with, and never a delete
            why = (
                f"TerminationDate {day.isoformat()} + sync.delete_grace ({self.rules.delete_grace} days) "
                "is past the last representable date"
            )
            self.reject("infinityhr", "employee", eid, "invalid_date", why, emp)
            return False
        return self.rules.today < last_day

    def _name(self, first: str | None, middle: str | None, family: str | None, preferred: str | None) -> str:
        given = preferred or first or ""
        text = self.rules.name_format.format(
            given=given, first=first or "", middle=middle or "", family=family or ""
        )
        return " ".join(text.split())

    def _check(self, source: str, kind: str, rid: str, body: Body, payload: Payload) -> bool:
        problem = member_problem(body)
        if problem is not None:
            self.reject(source, kind, rid, *problem, payload)
        return problem is None

    def _phones(self, emp: Payload, wo: Payload | None) -> tuple[str | None, str | None]:
        ihr = (clean(emp.get("work_phone")), clean(emp.get("mobile_phone")))
        if wo is None:
            return ihr
        whos = (
            usable(wo.get("work_telephone"), LIMITS["telNo"]),
            usable(wo.get("mobile_telephone"), LIMITS["cphNo"]),
        )
        first, second = (whos, ihr) if self.rules.phone_precedence == "whosoff" else (ihr, whos)
        return first[0] or second[0], first[1] or second[1]

    def _member_body(
        self, eid: str, emp: Payload, wo: Payload | None, depts: Mapping[str, Payload]
    ) -> Body | None:
        problem = name_parts_problem(emp)
        if problem is not None:
            self.reject("infinityhr", "employee", eid, *problem, emp)
            return None
        tel, cph = self._phones(emp, wo)
        body: Body = {
            "name": self._name(
                clean(emp.get("first_name")),
                clean(emp.get("middle_name")),
                clean(emp.get("last_name")),
                clean(emp.get("preferred_name")),
            ),
            "emailAddr": (clean(emp.get("work_email")) or "").lower(),
            "telNo": tel,
            "cphNo": cph,
            "_grade": clean(emp.get("job_grade")),
            "_position": clean(emp.get("job_title")),
            **dict(self.rules.member_fields),
        }
        if not self._check("infinityhr", "employee", eid, body, emp):
            return None
        dept = clean(emp.get("department_code"))
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
                clean(user.get("first_name")),
                clean(user.get("middle_name")),
                clean(user.get("last_name")),
                None,
            ),
            "emailAddr": (clean(user.get("email")) or "").lower(),
            "telNo": clean(user.get("work_telephone")),
            "cphNo": clean(user.get("mobile_telephone")),
            "_grade": None,
            "_position": None,
            "deptExternalKey": keys.source_key(self.rules.whosoff_only_department),
            **dict(self.rules.member_fields),
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

    def collisions(self, members: dict[str, tuple[Body, str, Payload]]) -> None:
        """A member whose address collided with an unmapped WORKBOX member, and still has it, is
        quarantined; held back until its retry is due (a new address is tried at once)."""
        for key, collided in self.src.collided.items():
            member = members.get(key)
            if member is None or str(member[0].get("emailAddr", "")).lower() != collided.email:
                continue
            body = {k: v for k, v in member[0].items() if not k.startswith("_") and v is not None}
            self.rejects.append(Reject("workbox", "user", key, UNMAPPED, collided.reason, body))
            if collided.hold:
                del members[key]
                self.freeze("user", key)

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
        self.collisions(members)

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
            for absent in [k for k, v in body.items() if v is None]:
                del body[absent]  # in place: at 100k a copy of every body is 30 MB more at the peak
            pushed = self.ledger.get(("user", key))
            # unchanged (most members, most cycles): the ledger's body itself, not a second equal copy
            users[key] = pushed if pushed == body else body

        for name, key in grades.items():
            self.out["job-grade"][key] = {"name": name, "sortOrd": _order(name, self.rules.grade_order)}
        for name, key in positions.items():
            self.out["job-position"][key] = {"name": name, "sortOrd": _order(name, self.rules.position_order)}

        self._build_departments(depts)
        self._keep_referenced()
        return Desired(self.out, self.rejects, self.frozen)

    def _build_departments(self, depts: Mapping[str, Payload]) -> None:
        used = {u.get("deptExternalKey") for u in self.out["user"].values()}
        dept_out = self.out["dept"]
        for code in sorted(kept_departments(depts, used)):
            key = keys.source_key(code)
            if ("dept", key) not in self.frozen:
                dept_out[key] = department_body(depts[code], self.rules.dept_sort_order)
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


def _order(name: str, order: tuple[str, ...]) -> int:
    """``sortOrd`` from configuration only: the name's 1-based place in the list, else 1000."""
    return order.index(name) + 1 if name in order else 1000


def merge(sources: Sources, ledger: Mapping[tuple[str, str], Body], rules: Rules) -> Desired:
    """The desired WORKBOX directory for ``sources``, given what the ledger records as pushed."""
    return _Merger(sources, ledger, rules).run()
