"""HR mutations applied while the sandbox runs (``POST /_sandbox/hr/mutate`` and ``Sandbox.mutate``).

One op per request, or the same op on many employees at once with ``"count": N`` (see
:func:`mutate_many`; ``syncd sandbox hr …`` is its command line).

Every employee mutation bumps ``LastModified`` and appends a GetEmployeeChanges entry (``Add`` for
hire, ``Delete`` for delete, ``Change`` otherwise). Department mutations change GetDepartments only
(and the mirrored WhosOff department); they record no employee change. Linked WhosOff users follow
the HR change where a real company's WhosOff admin would (hire, terminate, transfer, rename) unless
``whosoff=false`` is passed. Each op returns a JSON-able dict describing what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from .data import (
    EMAIL_DOMAIN,
    Company,
    Department,
    Employee,
    EmployeeChange,
    WhosOffUser,
    make_employee,
    make_whosoff_user,
)


class MutationError(ValueError):
    """A mutation request that cannot be applied (unknown op, employee, department, ...)."""


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _record(company: Company, emp: Employee, change_type: str) -> datetime:
    when = now_ms()
    if change_type != "Delete":
        emp.last_modified = when
    snapshot = None if change_type == "Delete" else replace(emp)
    seq = len(company.changes) + 1
    company.changes.append(EmployeeChange(seq, emp.employee_id, change_type, when, snapshot))
    company.invalidate()
    return when


def _employee(company: Company, args: dict[str, Any]) -> Employee:
    eid = args.get("employee_id")
    if not isinstance(eid, str) or eid not in company.employees:
        raise MutationError(f"unknown employee_id {eid!r}")
    return company.employees[eid]


def _department(company: Company, code: object, *, field: str = "department_code") -> Department:
    if not isinstance(code, str) or code not in company.departments:
        raise MutationError(f"unknown {field} {code!r}")
    return company.departments[code]


def _whosoff_user(company: Company, emp: Employee) -> WhosOffUser | None:
    for user in company.whosoff_users.values():
        if user.employee_id == emp.employee_id:
            return user
    return None


def _str(args: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = args.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise MutationError(f"{key} must be a non-empty string")
    return value


def _date(args: dict[str, Any], key: str) -> date:
    value = args.get(key)
    if value is None:
        return datetime.now(UTC).date()
    if not isinstance(value, str):
        raise MutationError(f"{key} must be YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise MutationError(f"{key} must be YYYY-MM-DD") from exc


def _emp_result(op: str, emp: Employee, when: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "op": op,
        "employee_id": emp.employee_id,
        "payroll_id": emp.payroll_id,
        "change_date": when.isoformat().replace("+00:00", "Z"),
        **extra,
    }


def hire(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    active = [c for c, d in company.departments.items() if d.is_active]
    code = args.get("department_code") or active[company.rng.randrange(len(active))]
    dept = _department(company, code)
    if not dept.is_active:
        raise MutationError(f"department {dept.code} is inactive")
    emp = make_employee(company, company.rng, dept.code, None, _date(args, "hire_date"), now_ms())
    for key, attr in (
        ("first_name", "first_name"),
        ("last_name", "last_name"),
        ("job_title", "job_title"),
        ("job_grade", "job_grade"),
    ):
        if key in args:
            setattr(emp, attr, _str(args, key))
    if "work_email" in args:
        email = _str(args, "work_email") or ""
        if email.lower() in company.emails:
            raise MutationError(f"work_email {email} is already used")
        company.emails.add(email.lower())
        emp.work_email = email
    company.employees[emp.employee_id] = emp
    when = _record(company, emp, "Add")
    user_id = None
    if args.get("whosoff", True):
        user = make_whosoff_user(company, emp, company.rng, by_email=False)
        user.status_id = 1
        company.whosoff_users[user.user_id] = user
        user_id = user.user_id
    return _emp_result(
        "hire",
        emp,
        when,
        department_code=emp.department_code,
        work_email=emp.work_email,
        whosoff_user_id=user_id,
    )


def transfer(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    emp = _employee(company, args)
    dept = _department(company, args.get("department_code"))
    old = emp.department_code
    emp.department_code = dept.code
    when = _record(company, emp, "Change")
    user = _whosoff_user(company, emp)
    if user is not None and args.get("whosoff", True):
        user.department_id = company.whosoff_department_for(dept.code)
    return _emp_result("transfer", emp, when, old_department_code=old, department_code=dept.code)


def rename(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    emp = _employee(company, args)
    if not any(k in args for k in ("first_name", "last_name", "middle_name", "preferred_name")):
        args = {**args, "last_name": emp.last_name + "-Lee"}
    for key in ("first_name", "last_name"):
        if key in args:
            setattr(emp, key, _str(args, key))
    for key in ("middle_name", "preferred_name"):
        if key in args:
            setattr(emp, key, _str(args, key, required=False))
    when = _record(company, emp, "Change")
    user = _whosoff_user(company, emp)
    if user is not None and args.get("whosoff", True):
        user.first_name, user.last_name, user.middle_name = emp.first_name, emp.last_name, emp.middle_name
    return _emp_result("rename", emp, when, first_name=emp.first_name, last_name=emp.last_name)


def email_change(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    """Changes the HR work e-mail only: the WhosOff user keeps its old address (staff code links it)."""
    emp = _employee(company, args)
    email = _str(args, "work_email", required=False)
    if email is None:
        local = emp.work_email.split("@")[0].lower()
        email = f"{local}.new{len(company.changes) + 1}@{EMAIL_DOMAIN}"
    if email.lower() in company.emails and email.lower() != emp.work_email.lower():
        raise MutationError(f"work_email {email} is already used")
    old = emp.work_email
    company.emails.discard(old.lower())
    company.emails.add(email.lower())
    emp.work_email = email
    when = _record(company, emp, "Change")
    return _emp_result("email_change", emp, when, old_work_email=old, work_email=email)


def promote(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    emp = _employee(company, args)
    old = (emp.job_grade, emp.job_title)
    grade = _str(args, "job_grade", required=False)
    title = _str(args, "job_title", required=False)
    if grade is None and title is None:
        idx = company.job_grades.index(emp.job_grade) if emp.job_grade in company.job_grades else -1
        grade = company.job_grades[(idx + 1) % len(company.job_grades)]
    if grade is not None:
        emp.job_grade = grade
    if title is not None:
        emp.job_title = title
    when = _record(company, emp, "Change")
    return _emp_result(
        "promote",
        emp,
        when,
        old_job_grade=old[0],
        old_job_title=old[1],
        job_grade=emp.job_grade,
        job_title=emp.job_title,
    )


def terminate(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    emp = _employee(company, args)
    emp.status = "Terminated"
    emp.termination_date = _date(args, "termination_date")
    when = _record(company, emp, "Change")
    user = _whosoff_user(company, emp)
    if user is not None and args.get("whosoff", True):
        user.status_id = 0
        user.employment_ended_date = emp.termination_date
    return _emp_result("terminate", emp, when, termination_date=emp.termination_date.isoformat())


def set_status(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    """``{"op": "set_status", "employee_id", "status": "Active"|"Leave"}`` (leave, return, rehire)."""
    emp = _employee(company, args)
    status = _str(args, "status")
    if status not in ("Active", "Leave"):
        raise MutationError("status must be Active or Leave (use terminate for Terminated)")
    emp.status = status
    emp.termination_date = None
    when = _record(company, emp, "Change")
    user = _whosoff_user(company, emp)
    if user is not None and args.get("whosoff", True):
        user.status_id, user.employment_ended_date = 1, None
    return _emp_result("set_status", emp, when, status=status)


def delete(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    """Purge an employee from HR (GetEmployeeChanges reports ``Delete``)."""
    emp = _employee(company, args)
    del company.employees[emp.employee_id]
    company.emails.discard(emp.work_email.lower())
    when = _record(company, emp, "Delete")
    return _emp_result("delete", emp, when)


def dept_rename(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    dept = _department(company, args.get("department_code"))
    old, dept.name = dept.name, _str(args, "name") or dept.name
    wo_id = company.whosoff_by_hr.get(dept.code)
    if wo_id is not None:
        company.whosoff_departments[wo_id].name = dept.name[:50]
    return {"op": "dept_rename", "department_code": dept.code, "old_name": old, "name": dept.name}


def dept_move(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    dept = _department(company, args.get("department_code"))
    parent_code = args.get("parent_code")
    if parent_code is not None:
        parent = _department(company, parent_code, field="parent_code")
        if dept.code in company.hr_chain(parent.code):
            raise MutationError("a department cannot move under itself or its descendants")
    old, dept.parent_code = dept.parent_code, parent_code
    return {
        "op": "dept_move",
        "department_code": dept.code,
        "old_parent_code": old,
        "parent_code": parent_code,
    }


def dept_create(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    parent_code = args.get("parent_code")
    if parent_code is not None:
        _department(company, parent_code, field="parent_code")
    code = company.new_department_code()
    name = _str(args, "name", required=False) or f"New Department {code}"
    company.departments[code] = Department(code, name, parent_code)
    wo = company.add_whosoff_department(name, 0, code)
    return {
        "op": "dept_create",
        "department_code": code,
        "name": name,
        "parent_code": parent_code,
        "whosoff_department_id": wo.department_id,
    }


def dept_deactivate(company: Company, args: dict[str, Any]) -> dict[str, Any]:
    dept = _department(company, args.get("department_code"))
    dept.is_active = bool(args.get("active", False))
    return {"op": "dept_deactivate", "department_code": dept.code, "is_active": dept.is_active}


OPS: dict[str, Callable[[Company, dict[str, Any]], dict[str, Any]]] = {
    "hire": hire,
    "transfer": transfer,
    "rename": rename,
    "email_change": email_change,
    "promote": promote,
    "terminate": terminate,
    "set_status": set_status,
    "delete": delete,
    "dept_rename": dept_rename,
    "dept_move": dept_move,
    "dept_create": dept_create,
    "dept_deactivate": dept_deactivate,
}


def mutate(company: Company, op: str, args: dict[str, Any]) -> dict[str, Any]:
    func = OPS.get(op)
    if func is None:
        raise MutationError(f"unknown op {op!r}; one of {', '.join(OPS)}")
    return func(company, args)


#: the ops that make something new rather than change an employee
_CREATING = ("hire", "dept_create")
MAX_COUNT = 10_000


def mutate_many(company: Company, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """``{"op", "count": N, …args}``: the op ``N`` times, ``{"op", "count", "results": […]}``.

    An op that makes something (``hire``, ``dept_create``) runs ``N`` times; an op on an employee takes
    the first ``N`` active employees by EmployeeID (so a wave is reproducible for a seed).  Nothing is
    changed when fewer than ``N`` qualify."""
    args = dict(args)
    count = args.pop("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise MutationError(f"count must be a whole number from 1 to {MAX_COUNT}")
    if op not in OPS:
        raise MutationError(f"unknown op {op!r}; one of {', '.join(OPS)}")
    if op in _CREATING:
        return {"op": op, "count": count, "results": [mutate(company, op, dict(args)) for _ in range(count)]}
    if op.startswith("dept_"):
        raise MutationError(f"count works with hire, dept_create and the employee ops, not {op}")
    if "employee_id" in args:
        raise MutationError("count picks the employees: give either employee_id or count")
    active = [e.employee_id for e in company.employee_list() if e.status == "Active"][:count]
    if len(active) < count:
        raise MutationError(f"only {len(active)} active employees, fewer than count {count}")
    results = [mutate(company, op, {**args, "employee_id": eid}) for eid in active]
    return {"op": op, "count": count, "results": results}
