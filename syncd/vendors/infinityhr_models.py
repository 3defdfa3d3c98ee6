"""InfinityHR wire models: EmployeeInfo and DepartmentInfo become typed records here.

Models are strict about structure (an id must be present, a date must be a date) and lenient about
content (every text field is ``str | None``; the engine validates content).  Only the configured
fields (``[infinityhr.fields]``: syncd's name → the vendor's element name) are read, so SSN and
PersonalEmail never are, whatever the service calls them; :data:`PRIVATE_FIELDS` are also dropped by
name before a record is looked at.  EmploymentStatus is translated to ``Active`` / ``Leave`` /
``Terminated`` through ``[infinityhr.status_values]``; an unmapped value passes on as it is (the engine
quarantines it).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from lxml import etree

from syncd.vendors._soap import fields_of
from syncd.vendors.common import InvalidRecord

VENDOR = "infinityhr"
#: never read into a model, never logged
PRIVATE_FIELDS = frozenset({"SSN", "PersonalEmail"})


class InvalidValue(Exception):
    """A field of one record has the wrong type (the record becomes an :class:`InvalidRecord`)."""


@dataclass(frozen=True, slots=True)
class Employee:
    employee_id: str
    payroll_employee_id: str | None
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    preferred_name: str | None
    work_email: str | None
    work_phone: str | None
    mobile_phone: str | None
    department_code: str | None
    job_title: str | None
    job_grade: str | None
    supervisor_employee_id: str | None
    employment_status: str | None
    hire_date: date | None
    termination_date: date | None
    last_modified: datetime | None
    #: on the record only when the service has no departments method (``departments_from``)
    department_name: str | None = None
    parent_department_code: str | None = None


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str | None
    parent_code: str | None
    is_active: bool


@dataclass(frozen=True, slots=True)
class EmployeePage:
    page_number: int
    total_count: int
    employees: list[Employee]
    invalid: list[InvalidRecord]


#: syncd's field name → the contract's element name (the defaults of ``[infinityhr.fields]``)
DEFAULT_FIELDS: dict[str, str] = {
    "employee_id": "EmployeeID", "payroll_employee_id": "PayrollEmployeeID", "first_name": "FirstName",
    "middle_name": "MiddleName", "last_name": "LastName", "preferred_name": "PreferredName",
    "work_email": "WorkEmail", "work_phone": "WorkPhone", "mobile_phone": "MobilePhone",
    "department_code": "DepartmentCode", "job_title": "JobTitle", "job_grade": "JobGrade",
    "supervisor_employee_id": "SupervisorEmployeeID", "employment_status": "EmploymentStatus",
    "hire_date": "HireDate", "termination_date": "TerminationDate", "last_modified": "LastModified",
    "department_name": "DepartmentName", "parent_department_code": "ParentDepartmentCode",
}  # fmt: skip
_STR_FIELDS = (
    "payroll_employee_id", "first_name", "middle_name", "last_name", "preferred_name", "work_email",
    "work_phone", "mobile_phone", "department_code", "job_title", "job_grade", "supervisor_employee_id",
    "department_name", "parent_department_code",
)  # fmt: skip
DEFAULT_STATUS = {"Active": "Active", "Leave": "Leave", "Terminated": "Terminated"}


def _date(fields: dict[str, str | None], name: str) -> date | None:
    text = fields.get(name)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidValue(f"{name} is not an xs:date") from None


def parse_datetime(fields: dict[str, str | None], name: str) -> datetime | None:
    text = fields.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"{name} is not an xs:dateTime") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class EmployeeReader:
    """EmployeeInfo elements → :class:`Employee`, in a service's element names and status values."""

    def __init__(
        self, fields: Mapping[str, str] = DEFAULT_FIELDS, status: Mapping[str, str] = DEFAULT_STATUS
    ) -> None:
        self.fields = {**DEFAULT_FIELDS, **fields}
        self.status = dict(status)
        #: the elements read (nothing else of a record is kept, not even in an InvalidRecord)
        self.elements = frozenset(self.fields.values()) - PRIVATE_FIELDS
        self._strings = [(attr, self.fields[attr]) for attr in _STR_FIELDS]

    def __call__(self, el: etree._Element) -> Employee | InvalidRecord:
        fields = fields_of(el, drop=PRIVATE_FIELDS, keep=self.elements)
        try:
            return self._employee(fields)
        except InvalidValue as exc:
            return InvalidRecord(VENDOR, fields.get(self.fields["employee_id"]), str(exc), fields)

    def _employee(self, fields: dict[str, str | None]) -> Employee:
        f = self.fields
        employee_id = fields.get(f["employee_id"])
        if not employee_id:
            raise InvalidValue(f"{f['employee_id']} is missing")
        values = {attr: fields.get(element) for attr, element in self._strings}
        status = fields.get(f["employment_status"])
        if status is not None and status not in self.status:
            known = ", ".join(sorted(self.status))
            raise InvalidValue(
                f"{f['employment_status']} {status[:40]!r} is none of infinityhr.status_values ({known})"
            )
        values["employment_status"] = self.status.get(status) if status is not None else None
        return Employee(
            employee_id=employee_id,
            **values,
            hire_date=_date(fields, f["hire_date"]),
            termination_date=_date(fields, f["termination_date"]),
            last_modified=parse_datetime(fields, f["last_modified"]),
        )


#: the contract's dialect
parse_employee = EmployeeReader()


def parse_department(el: etree._Element) -> Department | InvalidRecord:
    fields = fields_of(el)
    code = fields.get("DepartmentCode")
    active = (fields.get("IsActive") or "true").lower()
    if not code:
        return InvalidRecord(VENDOR, None, "DepartmentCode is missing", dict(fields))
    if active not in ("true", "false", "1", "0"):
        return InvalidRecord(VENDOR, code, "IsActive is not an xs:boolean", dict(fields))
    return Department(code, fields.get("Name"), fields.get("ParentDepartmentCode"), active in ("true", "1"))


def departments_of(
    read: tuple[list[Employee], list[InvalidRecord]],
) -> tuple[list[Department], list[InvalidRecord]]:
    """The department tree the employee records describe (all active: a record names no inactive one).

    Two records that give one code different names or parents: the most common wins, the others are
    reported once as invalid for that code (kept for inspection, never silently dropped)."""
    employees, _ = read
    names: dict[str, collections.Counter[tuple[str | None, str | None]]] = {}
    for emp in employees:
        if emp.department_code:
            names.setdefault(emp.department_code, collections.Counter())[
                (emp.department_name, emp.parent_department_code)
            ] += 1
    out: list[Department] = []
    invalid: list[InvalidRecord] = []
    for code, seen in sorted(names.items()):
        (name, parent), _ = seen.most_common(1)[0]
        out.append(Department(code, name, parent, True))
        if len(seen) > 1:
            others = ", ".join(f"{n!r} under {p!r}" for (n, p), _ in seen.most_common()[1:])
            reason = f"employees give department {code} other names or parents too ({others}); used {name!r}"
            invalid.append(InvalidRecord(VENDOR, code, reason, {"DepartmentCode": code}))
    return out, invalid
