"""Another vendor dialect for the sandbox (``syncd sandbox --dialect FILE``): what a real deployment
may do differently from the contract's defaults (docs/vendor-contract.md §4), so that adapting syncd
by configuration alone can be tested.

The file is TOML; every key is optional (the contract's default):

    [infinityhr]
    namespace = "urn:example:hr/"      # the body namespace and WSDL targetNamespace
    soap_action = "{namespace}{method}" # the SOAPAction template (quoted on the wire)
    departments_method = false         # no departments method: employees carry department_name
                                       # and parent_department_code instead
    [infinityhr.methods]               # authenticate, employees, departments, employees_changed
    [infinityhr.fields]                # the element names of EmployeeInfo, by syncd's field name
    [infinityhr.status_values]         # active, leave, terminated: the value the service sends

    [whosoff]
    email_field = "email_address"      # the key a user's e-mail is served under (default email_contact)

    [workbox]
    signature = "v2"                   # the only signature variant the gateway accepts (default v1)
    connections_off = ["job-position"] # kinds whose organisation connection is OFF: answered E903

Plain data: the sandbox knows nothing of syncd's settings classes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKBOX_KINDS = ("dept", "user", "job-grade", "job-position")
DEFAULT_NAMESPACE = "http://www.infinityhr.com/webservices/"
#: the method names of the contract (§2), by role
DEFAULT_METHODS = {
    "authenticate": "Authenticate",
    "employees": "GetEmployeesAll",
    "departments": "GetDepartments",
    "employees_changed": "GetEmployeesByDateRange",
}
#: the element names of EmployeeInfo (§2.2), by field; the last two appear only when the service has
#: no departments method (the department tree then comes from the employee records)
DEFAULT_FIELDS = {
    "employee_id": "EmployeeID", "payroll_employee_id": "PayrollEmployeeID", "ssn": "SSN",
    "first_name": "FirstName", "middle_name": "MiddleName", "last_name": "LastName",
    "preferred_name": "PreferredName", "work_email": "WorkEmail", "personal_email": "PersonalEmail",
    "work_phone": "WorkPhone", "mobile_phone": "MobilePhone", "department_code": "DepartmentCode",
    "job_title": "JobTitle", "job_grade": "JobGrade", "supervisor_employee_id": "SupervisorEmployeeID",
    "employment_status": "EmploymentStatus", "hire_date": "HireDate", "termination_date": "TerminationDate",
    "last_modified": "LastModified", "department_name": "DepartmentName",
    "parent_department_code": "ParentDepartmentCode",
}  # fmt: skip
DEFAULT_STATUS = {"active": "Active", "leave": "Leave", "terminated": "Terminated"}
EMAIL_FIELDS = ("email_contact", "email_address")


class DialectError(ValueError):
    """A dialect file that cannot be used (names the file and the key)."""


@dataclass(frozen=True)
class InfinityHRDialect:
    namespace: str = DEFAULT_NAMESPACE
    soap_action: str = "{namespace}{method}"
    departments_method: bool = True
    methods: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_METHODS))
    fields: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    status_values: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUS))

    def action(self, method: str) -> str:
        """The SOAPAction of ``method`` (a method name), unquoted."""
        return self.soap_action.format(namespace=self.namespace, method=method)


@dataclass(frozen=True)
class WhosOffDialect:
    email_field: str = "email_contact"


@dataclass(frozen=True)
class WorkboxDialect:
    signature: str = "v1"
    connections_off: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dialect:
    infinityhr: InfinityHRDialect = field(default_factory=InfinityHRDialect)
    whosoff: WhosOffDialect = field(default_factory=WhosOffDialect)
    workbox: WorkboxDialect = field(default_factory=WorkboxDialect)


def _section(data: dict[str, Any], name: str, known: tuple[str, ...], where: str) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise DialectError(f"{where}: [{name}] must be a table")
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise DialectError(
            f"{where}: [{name}] has unknown keys {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return section


def parse_dialect(data: dict[str, Any], where: str = "dialect") -> Dialect:
    unknown = sorted(set(data) - {"infinityhr", "whosoff", "workbox"})
    if unknown:
        raise DialectError(
            f"{where}: unknown sections {', '.join(unknown)} (known: infinityhr, whosoff, workbox)"
        )
    keys = ("namespace", "soap_action", "departments_method", "methods", "fields", "status_values")
    ih = _section(data, "infinityhr", keys, where)
    tables = {}
    for name, defaults in (
        ("methods", DEFAULT_METHODS),
        ("fields", DEFAULT_FIELDS),
        ("status_values", DEFAULT_STATUS),
    ):
        given = ih.get(name, {})
        if not isinstance(given, dict) or set(given) - set(defaults):
            raise DialectError(f"{where}: infinityhr.{name} takes only {', '.join(defaults)}")
        if not all(isinstance(v, str) and v for v in given.values()):
            raise DialectError(f"{where}: infinityhr.{name} values must be non-empty strings")
        tables[name] = {**defaults, **given}
    infinityhr = InfinityHRDialect(
        namespace=str(ih.get("namespace", DEFAULT_NAMESPACE)),
        soap_action=str(ih.get("soap_action", "{namespace}{method}")),
        departments_method=bool(ih.get("departments_method", True)),
        **tables,
    )
    wo = _section(data, "whosoff", ("email_field",), where)
    wb = _section(data, "workbox", ("signature", "connections_off"), where)
    email_field = wo.get("email_field", "email_contact")
    if email_field not in EMAIL_FIELDS:
        raise DialectError(f"{where}: whosoff.email_field must be one of {', '.join(EMAIL_FIELDS)}")
    signature = wb.get("signature", "v1")
    if signature not in ("v1", "v2"):
        raise DialectError(f"{where}: workbox.signature must be v1 or v2")
    off = wb.get("connections_off", [])
    if not isinstance(off, list) or any(k not in WORKBOX_KINDS for k in off):
        raise DialectError(f"{where}: workbox.connections_off must list kinds of {', '.join(WORKBOX_KINDS)}")
    return Dialect(infinityhr, WhosOffDialect(email_field), WorkboxDialect(signature, tuple(off)))


def load_dialect(path: Path) -> Dialect:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DialectError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DialectError(f"{path}: not valid TOML: {exc}") from None
    return parse_dialect(data, str(path))
