"""The generator (deterministic, realistic edge cases) and the HR mutations."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from syncd.sandbox import MutationError, generate_company
from syncd.sandbox.mutations import mutate


def test_same_seed_same_company() -> None:
    a, b = generate_company(300, seed=5), generate_company(300, seed=5)
    assert a.employees == b.employees
    assert a.departments == b.departments
    assert a.whosoff_users == b.whosoff_users
    assert a.whosoff_departments == b.whosoff_departments
    assert generate_company(300, seed=6).employees != a.employees


def test_company_shape() -> None:
    c = generate_company(1000, seed=1, overlap=0.8, whosoff_only=5)
    assert len(c.employees) == 1000 and len(c.departments) == 20
    assert all(re.fullmatch(r"E\d{6}", e) for e in c.employees)
    assert all(re.fullmatch(r"D\d{4}", d) for d in c.departments)
    depths = [len(c.hr_chain(code)) for code in c.departments]
    assert max(depths) >= 3
    assert any(not d.is_active for d in c.departments.values())
    emps = list(c.employees.values())
    status = Counter(e.status for e in emps)
    assert 0.85 < status["Active"] / 1000 < 0.95 and status["Leave"] and status["Terminated"]
    assert all((e.termination_date is not None) == (e.status == "Terminated") for e in emps)
    assert any(e.work_phone is None for e in emps) and any(e.mobile_phone is None for e in emps)
    assert any(e.work_email != e.work_email.lower() for e in emps)
    assert len({e.work_email.lower() for e in emps}) == 1000
    assert any(re.search("[가-힣]", e.first_name) for e in emps)
    assert any(re.search("[éëöüñçøł]", e.first_name + e.last_name, re.I) for e in emps)
    assert any(re.search("[가-힣]", g) for g in c.job_grades)
    assert all(e.ssn and e.personal_email for e in emps)
    users = list(c.whosoff_users.values())
    linked = [u for u in users if u.employee_id is not None]
    assert 0.75 < len(linked) / 1000 < 0.85
    assert len(users) - len(linked) == 5
    by_id = c.employees
    by_staff = [u for u in linked if u.staff_code == by_id[u.employee_id or ""].payroll_id]
    by_email_only = [u for u in linked if u.staff_code != by_id[u.employee_id or ""].payroll_id]
    assert by_staff and by_email_only
    assert all(
        u.email_contact.lower() == by_id[u.employee_id or ""].work_email.lower() for u in by_email_only
    )
    assert any(u.status_id == 0 for u in users)
    assert all(isinstance(u.department_id, int) and u.department_id in c.whosoff_departments for u in users)


def test_mutations() -> None:
    c = generate_company(100, seed=2)
    before = len(c.employees)
    hired = mutate(c, "hire", {"department_code": "D0001", "first_name": "Chloé"})
    new = c.employees[hired["employee_id"]]
    assert len(c.employees) == before + 1 and new.first_name == "Chloé" and new.department_code == "D0001"
    assert c.employee_list()[-1] is new and hired["whosoff_user_id"] in c.whosoff_users
    mutate(c, "transfer", {"employee_id": "E000001", "department_code": "D0002"})
    assert c.employees["E000001"].department_code == "D0002"
    mutate(c, "rename", {"employee_id": "E000001", "last_name": "이"})
    mutate(c, "email_change", {"employee_id": "E000001", "work_email": "New.Address@acme.example"})
    mutate(c, "promote", {"employee_id": "E000001", "job_grade": "부장"})
    mutate(c, "terminate", {"employee_id": "E000003", "termination_date": "2026-02-01"})
    assert c.employees["E000003"].status == "Terminated"
    assert [ch.change_type for ch in c.changes] == ["Add", "Change", "Change", "Change", "Change", "Change"]
    assert c.changes[1].employee is not None and c.changes[1].employee.department_code == "D0002"
    e1 = c.employees["E000001"]
    assert (e1.last_name, e1.work_email, e1.job_grade) == ("이", "New.Address@acme.example", "부장")
    assert e1.last_modified == c.changes[4].change_date
    with pytest.raises(MutationError):
        mutate(c, "email_change", {"employee_id": "E000002", "work_email": "new.address@ACME.example"})
    created = mutate(c, "dept_create", {"name": "Pangyo 연구소", "parent_code": "D0001"})
    mutate(c, "dept_rename", {"department_code": created["department_code"], "name": "Renamed"})
    mutate(c, "dept_move", {"department_code": created["department_code"], "parent_code": None})
    mutate(c, "dept_deactivate", {"department_code": created["department_code"]})
    dept = c.departments[created["department_code"]]
    assert (dept.name, dept.parent_code, dept.is_active) == ("Renamed", None, False)
    mutate(c, "dept_move", {"department_code": created["department_code"], "parent_code": "D0001"})
    with pytest.raises(MutationError):  # a cycle
        mutate(c, "dept_move", {"department_code": "D0001", "parent_code": created["department_code"]})
    with pytest.raises(MutationError):
        mutate(c, "fire_everyone", {})
    mutate(c, "delete", {"employee_id": "E000004"})
    assert "E000004" not in c.employees and c.changes[-1].change_type == "Delete"
