"""What WORKBOX should hold for a sandbox company, computed in the test from the documented rules.

Independent of ``syncd.engine.merge`` (only the key derivation, itself unit-tested with fixed
vectors, is shared), so an end-to-end test comparing against this checks the mapping, not merge
against itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from syncd.engine.keys import grade_key, position_key
from syncd.sandbox import Company


def expected_directory(
    company: Company, today: dt.date | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    today = today or dt.datetime.now(dt.UTC).date()
    active_wo = [u for u in company.whosoff_users.values() if u.status_id == 1]
    by_staff = {u.staff_code: u for u in active_wo if u.staff_code}
    by_email = {u.email_contact.lower(): u for u in active_wo}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    member_depts: set[str] = set()
    for e in company.employees.values():
        member = e.status in ("Active", "Leave") or (
            e.status == "Terminated" and e.termination_date is not None and e.termination_date > today
        )
        if not member:
            continue
        wo = by_staff.get(e.payroll_id) or by_email.get(e.work_email.strip().lower())
        body: dict[str, Any] = {
            "name": " ".join(f"{e.preferred_name or e.first_name} {e.last_name}".split()),
            "emailAddr": e.work_email.strip().lower(),
            "deptExternalKey": e.department_code,
            "gradeExternalKey": grade_key(e.job_grade),
            "positionExternalKey": position_key(e.job_title),
        }
        tel = e.work_phone or (wo.work_telephone if wo else None)
        cph = e.mobile_phone or (wo.mobile_telephone if wo else None)
        if tel:
            body["telNo"] = tel
        if cph:
            body["cphNo"] = cph
        out[("user", e.employee_id)] = body
        out[("job-grade", grade_key(e.job_grade))] = {"name": e.job_grade, "sortOrd": 1000}
        out[("job-position", position_key(e.job_title))] = {"name": e.job_title, "sortOrd": 1000}
        member_depts.add(e.department_code)
    kept: set[str] = set()
    for code, d in company.departments.items():
        if d.is_active or code in member_depts:
            kept.update(company.hr_chain(code))  # a kept department keeps its ancestors
    for code in kept:
        d = company.departments[code]
        out[("dept", code)] = {"name": d.name, "sortOrd": "0", "uprDeptExternalKey": d.parent_code or "#"}
    return out
