"""InfinityHR wire models: EmployeeInfo and DepartmentInfo become typed records here.

Models are strict about structure (an id must be present, a date must be a date) and lenient about
content (every text field is ``str | None``; the engine validates content).  SSN and PersonalEmail are
never read into anything: :data:`PRIVATE_FIELDS` are dropped before a record is looked at.
"""

from __future__ import annotations

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


_EMPLOYEE_STR = {
    "PayrollEmployeeID": "payroll_employee_id", "FirstName": "first_name", "MiddleName": "middle_name",
    "LastName": "last_name", "PreferredName": "preferred_name", "WorkEmail": "work_email",
    "WorkPhone": "work_phone", "MobilePhone": "mobile_phone", "DepartmentCode": "department_code",
    "JobTitle": "job_title", "JobGrade": "job_grade", "SupervisorEmployeeID": "supervisor_employee_id",
    "EmploymentStatus": "employment_status",
}  # fmt: skip


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


def _employee(fields: dict[str, str | None]) -> Employee:
    employee_id = fields.get("EmployeeID")
    if not employee_id:
        raise InvalidValue("EmployeeID is missing")
    return Employee(
        employee_id=employee_id,
        **{attr: fields.get(name) for name, attr in _EMPLOYEE_STR.items()},
        hire_date=_date(fields, "HireDate"),
        termination_date=_date(fields, "TerminationDate"),
        last_modified=parse_datetime(fields, "LastModified"),
    )


def parse_employee(el: etree._Element) -> Employee | InvalidRecord:
    fields = fields_of(el, drop=PRIVATE_FIELDS)
    try:
        return _employee(fields)
    except InvalidValue as exc:
        return InvalidRecord(VENDOR, fields.get("EmployeeID"), str(exc), dict(fields))


def parse_department(el: etree._Element) -> Department | InvalidRecord:
    fields = fields_of(el)
    code = fields.get("DepartmentCode")
    active = (fields.get("IsActive") or "true").lower()
    if not code:
        return InvalidRecord(VENDOR, None, "DepartmentCode is missing", dict(fields))
    if active not in ("true", "false", "1", "0"):
        return InvalidRecord(VENDOR, code, "IsActive is not an xs:boolean", dict(fields))
    return Department(code, fields.get("Name"), fields.get("ParentDepartmentCode"), active in ("true", "1"))
