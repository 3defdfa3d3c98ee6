"""``syncd.engine.merge``: staged source records → desired WORKBOX directory.

Table-driven, one behaviour per row; payloads are built with the real staging functions
(``employee_payload`` & co.) so their shape is the one merge sees in production.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.engine import keys
from syncd.engine.merge import Collided, Reject, Rules, Sources, merge
from syncd.engine.plan import make_plan
from syncd.engine.pull import department_payload, employee_payload, wo_user_payload
from syncd.vendors import Department, Employee, WhosOffUser

TODAY = dt.date(2024, 6, 15)
DAY = dt.timedelta(days=1)
ALLOWED_USER_FIELDS = {"name", "emailAddr", "deptExternalKey", "gradeExternalKey", "positionExternalKey",
                       "telNo", "cphNo"}  # fmt: skip


# ------------------------------------------------------------------------------------------ helpers


def emp(eid: str = "E1", **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "employee_id": eid,
        "payroll_employee_id": None,
        "first_name": "Ann",
        "middle_name": None,
        "last_name": "Lee",
        "preferred_name": None,
        "work_email": f"{eid.lower()}@example.com",
        "work_phone": None,
        "mobile_phone": None,
        "department_code": "D1",
        "job_title": "Engineer",
        "job_grade": "G1",
        "supervisor_employee_id": None,
        "employment_status": "Active",
        "hire_date": dt.date(2020, 1, 1),
        "termination_date": None,
        "last_modified": None,
    }
    fields.update(kw)
    return employee_payload(Employee(**fields))


def dept(
    code: str, parent: str | None = None, name: str | None = None, active: bool = True
) -> dict[str, Any]:
    return department_payload(Department(code, f"Dept {code}" if name is None else name, parent, active))


def wo(uid: int, **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "user_id": uid,
        "staff_code": None,
        "title": None,
        "first_name": "Wo",
        "middle_name": None,
        "last_name": f"User{uid}",
        "email": f"wo{uid}@example.com",
        "department_id": None,
        "user_type_id": 1,
        "status_id": 1,
        "employment_started_date": None,
        "employment_ended_date": None,
        "work_telephone": None,
        "mobile_telephone": None,
        "active_directory_username": None,
    }
    fields.update(kw)
    return wo_user_payload(WhosOffUser(**fields))


def sources(
    employees: list[dict[str, Any]],
    depts: list[dict[str, Any]] | None = None,
    wo_users: list[dict[str, Any]] | None = None,
    rejected: tuple[Reject, ...] = (),
) -> Sources:
    depts = [dept("D1")] if depts is None else depts
    return Sources(
        employees={e["employee_id"]: e for e in employees},
        departments={d["code"]: d for d in depts},
        wo_users={u["user_id"]: u for u in wo_users or []},
        rejected=rejected,
    )


def run(src: Sources, ledger: dict[tuple[str, str], Any] | None = None, **rules: Any):
    return merge(src, ledger or {}, Rules(today=TODAY, **rules))


def as_ledger(objects: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """What the ledger holds after a plan for ``objects`` was applied in full."""
    return {(kind, key): dict(body) for kind, objs in objects.items() for key, body in objs.items()}


def codes(desired) -> dict[str | None, str]:
    return {r.record_id: r.reason_code for r in desired.rejects}


def only_user(desired, key: str = "E1") -> dict[str, Any]:
    return desired.objects["user"][key]


# ---------------------------------------------------------------------------------- member status


@pytest.mark.parametrize(
    ("status", "termination", "grace", "member"),
    [
        ("Active", None, 0, True),
        ("Leave", None, 0, True),
        ("Active", TODAY - DAY, 0, True),  # a stale termination date does not matter while Active
        ("Terminated", None, 0, False),  # no date: removed at once
        ("Terminated", None, 30, False),
        ("Terminated", TODAY - 30 * DAY, 0, False),
        ("Terminated", TODAY - DAY, 0, False),
        ("Terminated", TODAY, 0, False),  # "today or past"
        ("Terminated", TODAY + DAY, 0, True),  # notice period: still a member
        ("Terminated", TODAY - DAY, 2, True),  # grace: removed on termination + 2 days
        ("Terminated", TODAY - 2 * DAY, 2, False),
        ("Terminated", TODAY - 3 * DAY, 2, False),
    ],
)
def test_member_status(status, termination, grace, member):
    desired = run(sources([emp(employment_status=status, termination_date=termination)]), delete_grace=grace)
    assert ("E1" in desired.objects["user"]) is member
    assert desired.rejects == []


def test_a_grace_period_past_the_last_date_is_an_invalid_date_and_freezes_the_member():
    """9999-12-31 + 1 day overflows: rejected (the ledger's body kept), never an exception or a delete."""
    far = emp(employment_status="Terminated", termination_date=dt.date.max)  # 9999-12-31
    ledger = as_ledger(run(sources([emp()])).objects)
    desired = run(sources([far]), ledger, delete_grace=1)
    assert codes(desired) == {"E1": "invalid_date"}
    assert "delete_grace" in desired.rejects[0].reason
    assert only_user(desired) == ledger[("user", "E1")] and ("user", "E1") in desired.frozen


# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("names", "name_format", "expected"),
    [
        ({}, "{given} {family}", "Ann Lee"),
        ({"preferred_name": "Annie"}, "{given} {family}", "Annie Lee"),
        ({"preferred_name": "   "}, "{given} {family}", "Ann Lee"),  # blank preferred name: first name
        ({"preferred_name": "Annie"}, "{first} {family}", "Ann Lee"),
        ({"middle_name": "May"}, "{first} {middle} {family}", "Ann May Lee"),
        ({}, "{first} {middle} {family}", "Ann Lee"),  # absent middle name leaves no double space
        ({"first_name": "민수", "last_name": "김"}, "{family}{given}", "김민수"),
        ({"first_name": "Minsu", "last_name": "Kim"}, "{family} {given}", "Kim Minsu"),
        ({"first_name": "  Mary   Ann ", "last_name": " Lee "}, "{given} {family}", "Mary Ann Lee"),
        ({"last_name": None}, "{given} {family}", "Ann"),
        ({"first_name": None, "preferred_name": "Al"}, "{given} {family}", "Al Lee"),
        ({"first_name": "Re\u0301ne"}, "{given} {family}", "R\u00e9ne Lee"),  # NFC
    ],
)
def test_name_format(names, name_format, expected):
    desired = run(sources([emp(**names)]), name_format=name_format)
    assert only_user(desired)["name"] == expected


def test_no_name_at_all_is_rejected():
    desired = run(sources([emp(first_name=None, last_name=None, preferred_name=" ")]))
    assert codes(desired) == {"E1": "missing_name"}
    assert desired.objects["user"] == {}


# ------------------------------------------------------------------------------------------ e-mail

LONG_LOCAL = "a" * (100 - len("@example.com"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ann.lee@example.com", "ann.lee@example.com"),
        ("  Ann.Lee@Example.COM \t", "ann.lee@example.com"),
        ("o'brien+hr@mail.example.co.kr", "o'brien+hr@mail.example.co.kr"),
        (f"{LONG_LOCAL}@example.com", f"{LONG_LOCAL}@example.com"),  # exactly 100 characters
        (None, "missing_email"),
        ("", "missing_email"),
        ("   ", "missing_email"),
        ("ann", "malformed_email"),
        ("ann@", "malformed_email"),
        ("@example.com", "malformed_email"),
        ("ann@example", "malformed_email"),
        ("ann@@example.com", "malformed_email"),
        ("ann lee@example.com", "malformed_email"),
        ("ann@-example.com", "malformed_email"),
        ("\u0430nn@example.com", "malformed_email"),  # Cyrillic а in the local part
        ("ann@ex\u0430mple.com", "malformed_email"),  # Cyrillic а in the domain
        ("ann@例え.jp", "malformed_email"),
        ("ann\u200b@example.com", "malformed_email"),
        ("ann@example.com\x00", "malformed_email"),
        (f"{LONG_LOCAL}b@example.com", "field_too_long"),  # 101 characters
    ],
)
def test_work_email(raw, expected):
    desired = run(sources([emp(work_email=raw)]))
    if "@" in expected:
        assert only_user(desired)["emailAddr"] == expected
        assert desired.rejects == []
    else:
        assert codes(desired) == {"E1": expected}
        assert desired.objects["user"] == {}
        assert desired.rejects[0].source == "infinityhr" and desired.rejects[0].kind == "employee"


# ---------------------------------------------------------------------- sizes and control characters


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"first_name": "A" * 50, "last_name": "B" * 49}, None),  # name of exactly 100
        ({"first_name": "A" * 50, "last_name": "B" * 50}, "field_too_long"),
        ({"work_phone": "1" * 30}, None),
        ({"work_phone": "1" * 31}, "field_too_long"),
        ({"mobile_phone": "1" * 100}, None),
        ({"mobile_phone": "1" * 101}, "field_too_long"),
        ({"job_grade": "G" * 100}, None),
        ({"job_grade": "G" * 101}, "field_too_long"),
        ({"job_title": "T" * 101}, "field_too_long"),
        ({"first_name": "Ann\x00"}, "invalid_characters"),
        ({"last_name": "Le\u200be"}, "invalid_characters"),  # zero-width space
        ({"preferred_name": "\u202eAnn"}, "invalid_characters"),  # right-to-left override
        ({"work_phone": "010\x1b1234"}, "invalid_characters"),
        ({"mobile_phone": "010\t1234"}, "invalid_characters"),
        ({"job_grade": "G\x07"}, "invalid_characters"),
        ({"job_title": "\ufeffEngineer"}, "invalid_characters"),
        ({"department_code": None}, "missing_department"),
        ({"department_code": "NOPE"}, "unknown_department"),
    ],
)
def test_field_validation(fields, expected):
    desired = run(sources([emp(**fields)]))
    if expected is None:
        assert desired.rejects == []
        assert "E1" in desired.objects["user"]
    else:
        assert codes(desired) == {"E1": expected}
        assert desired.objects["user"] == {}


def test_member_body_holds_only_workbox_fields():
    e = emp(work_phone="02-123", mobile_phone="010-1", payroll_employee_id="P1", supervisor_employee_id="E9")
    body = only_user(run(sources([e])))
    assert set(body) <= ALLOWED_USER_FIELDS
    assert body == {
        "name": "Ann Lee",
        "emailAddr": "e1@example.com",
        "deptExternalKey": "D1",
        "gradeExternalKey": keys.grade_key("G1"),
        "positionExternalKey": keys.position_key("Engineer"),
        "telNo": "02-123",
        "cphNo": "010-1",
    }


def test_absent_optional_fields_are_left_out_not_null():
    body = only_user(run(sources([emp(job_grade=None, job_title="  ")])))
    assert body == {"name": "Ann Lee", "emailAddr": "e1@example.com", "deptExternalKey": "D1"}


def test_ids_that_do_not_fit_are_mapped_everywhere():
    depts = [dept("본사"), dept("R&D", parent="본사")]
    desired = run(sources([emp("EMP 7", department_code="R&D", work_email="e7@example.com")], depts))
    rd, hq = keys.source_key("R&D"), keys.source_key("본사")
    assert set(desired.objects["user"]) == {keys.source_key("EMP 7")}
    assert desired.objects["user"][keys.source_key("EMP 7")]["deptExternalKey"] == rd
    assert desired.objects["dept"][rd]["uprDeptExternalKey"] == hq
    assert desired.objects["dept"][hq]["uprDeptExternalKey"] == "#"


# ------------------------------------------------------------------------------------- WhosOff join


@pytest.mark.parametrize(
    ("employee", "users", "rules", "tel", "cph"),
    [
        # joined by staff code = PayrollEmployeeID
        ({"payroll_employee_id": "P1"},
         [wo(7, staff_code="P1", work_telephone="02-7", mobile_telephone="010-7")], {}, "02-7", "010-7"),
        # joined by e-mail, case-insensitively
        ({}, [wo(7, email=" E1@Example.com ", mobile_telephone="010-7")], {}, None, "010-7"),
        # a staff code that matches nobody still allows the e-mail join
        ({"payroll_employee_id": "P404"}, [wo(7, email="e1@example.com", mobile_telephone="010-7")],
         {}, None, "010-7"),
        # staff code beats e-mail when they point at different users
        ({"payroll_employee_id": "P1"},
         [wo(7, email="e1@example.com", mobile_telephone="010-7"),
          wo(8, staff_code="P1", mobile_telephone="010-8")], {}, None, "010-8"),
        # no join at all
        ({"payroll_employee_id": "P1"}, [wo(7, staff_code="P2", mobile_telephone="010-7")], {}, None, None),
        # disabled WhosOff users are ignored, by staff code and by e-mail
        ({"payroll_employee_id": "P1"}, [wo(7, staff_code="P1", status_id=0, mobile_telephone="010-7")],
         {}, None, None),
        ({}, [wo(7, email="e1@example.com", status_id=0, mobile_telephone="010-7")], {}, None, None),
        # a disabled staff-code match does not hide an enabled e-mail match
        ({"payroll_employee_id": "P1"},
         [wo(7, staff_code="P1", status_id=0, mobile_telephone="010-7"),
          wo(8, email="e1@example.com", mobile_telephone="010-8")], {}, None, "010-8"),
        # WhosOff fills gaps only (default precedence)
        ({"payroll_employee_id": "P1", "work_phone": "02-1"},
         [wo(7, staff_code="P1", work_telephone="02-7", mobile_telephone="010-7")], {}, "02-1", "010-7"),
        ({"payroll_employee_id": "P1", "work_phone": "02-1", "mobile_phone": "010-1"},
         [wo(7, staff_code="P1", work_telephone="02-7", mobile_telephone="010-7")], {}, "02-1", "010-1"),
        # phone_precedence = whosoff: WhosOff wins where it has a value, HR fills its gaps
        ({"payroll_employee_id": "P1", "work_phone": "02-1", "mobile_phone": "010-1"},
         [wo(7, staff_code="P1", work_telephone="02-7")], {"phone_precedence": "whosoff"}, "02-7", "010-1"),
        ({"payroll_employee_id": "P1", "work_phone": "02-1"},
         [wo(7, staff_code="P1", work_telephone="  ", mobile_telephone="010-7")],
         {"phone_precedence": "whosoff"}, "02-1", "010-7"),
    ],
)  # fmt: skip
def test_whosoff_join_and_phones(employee, users, rules, tel, cph):
    desired = run(sources([emp(**employee)], wo_users=users), **rules)
    body = only_user(desired)
    assert body.get("telNo") == tel
    assert body.get("cphNo") == cph
    assert set(desired.objects["user"]) == {"E1"}  # joined or not, WhosOff users add no member here


def test_whosoff_never_changes_name_or_email():
    users = [wo(7, staff_code="P1", first_name="X", last_name="Y", email="other@example.com")]
    body = only_user(
        run(sources([emp(payroll_employee_id="P1")], wo_users=users), phone_precedence="whosoff")
    )
    assert (body["name"], body["emailAddr"]) == ("Ann Lee", "e1@example.com")


@pytest.mark.parametrize(
    ("include", "users", "expected_wo_members"),
    [
        (False, [wo(7)], set()),
        (True, [wo(7)], {"wo-7"}),
        (True, [wo(7, status_id=0)], set()),  # disabled
        (True, [wo(7, staff_code="P1")], set()),  # joined to E1 by staff code
        (True, [wo(7, email="E1@example.com")], set()),  # joined to E1 by e-mail
        (True, [wo(7), wo(8, email="bad")], {"wo-7"}),  # invalid one rejected, rest goes on
    ],
)
def test_include_whosoff_only(include, users, expected_wo_members):
    desired = run(sources([emp(payroll_employee_id="P1")], wo_users=users), include_whosoff_only=include)
    assert set(desired.objects["user"]) - {"E1"} == expected_wo_members
    if expected_wo_members:
        assert desired.objects["user"]["wo-7"] == {
            "name": "Wo User7",
            "emailAddr": "wo7@example.com",
            "deptExternalKey": "whosoff-only",
        }
        assert desired.objects["dept"]["whosoff-only"] == {
            "name": "whosoff-only",
            "sortOrd": "0",
            "uprDeptExternalKey": "#",
        }
    else:
        assert "whosoff-only" not in desired.objects["dept"]


def test_whosoff_only_department_from_the_hr_tree_is_used_as_it_is():
    depts = [dept("D1"), dept("Misc", name="Miscellaneous", parent="D1")]
    desired = run(sources([emp()], depts, [wo(7)]), include_whosoff_only=True, whosoff_only_department="Misc")
    assert desired.objects["user"]["wo-7"]["deptExternalKey"] == "Misc"
    assert desired.objects["dept"]["Misc"] == {
        "name": "Miscellaneous",
        "sortOrd": "0",
        "uprDeptExternalKey": "D1",
    }


@pytest.mark.parametrize("link", [{"staff_code": "P1"}, {"email": "e1@example.com"}])
def test_terminated_employee_does_not_return_as_whosoff_only_member(link):
    gone = emp(payroll_employee_id="P1", employment_status="Terminated", termination_date=TODAY - DAY)
    desired = run(sources([gone], wo_users=[wo(7, **link)]), include_whosoff_only=True)
    assert desired.objects["user"] == {}


# ------------------------------------------------------------------------------- duplicate e-mails


def test_duplicate_email_none_in_ledger_rejects_all():
    desired = run(
        sources([emp("E1", work_email="Same@example.com"), emp("E2", work_email=" same@example.com")])
    )
    assert desired.objects["user"] == {}
    assert codes(desired) == {"E1": "duplicate_email", "E2": "duplicate_email"}
    assert all("none of them is in WORKBOX yet" in r.reason for r in desired.rejects)


def test_duplicate_email_the_ledger_holder_keeps_it():
    first = run(sources([emp("E2", work_email="same@example.com")]))
    ledger = as_ledger(first.objects)
    desired = run(
        sources([emp("E1", work_email="same@example.com"), emp("E2", work_email="SAME@example.com"),
                 emp("E3", work_email="same@example.com")]),
        ledger,
    )  # fmt: skip
    assert set(desired.objects["user"]) == {"E2"}
    assert codes(desired) == {"E1": "duplicate_email", "E3": "duplicate_email"}
    assert all("E2 keeps it" in r.reason for r in desired.rejects)
    assert make_plan(desired.objects, ledger) == []


def test_duplicate_email_ledger_member_taking_anothers_address_is_frozen():
    """E1 (in the ledger with its own address) takes E2's: E2 keeps it, E1 stays as WORKBOX has it."""
    ledger = as_ledger(run(sources([emp("E1"), emp("E2")])).objects)
    desired = run(sources([emp("E1", work_email="e2@example.com"), emp("E2")]), ledger)
    assert codes(desired) == {"E1": "duplicate_email"}
    assert desired.objects["user"]["E1"] == ledger[("user", "E1")]
    assert ("user", "E1") in desired.frozen
    assert make_plan(desired.objects, ledger) == []


def _collided(src: Sources, **held: tuple[str, bool]) -> Sources:
    """``src`` with members whose create collided with an unmapped WORKBOX member: key → (e-mail, hold)."""
    collided = {key: Collided(email, f"{key} collided", hold) for key, (email, hold) in held.items()}
    return dataclasses.replace(src, collided=collided)


def test_a_collided_member_is_quarantined_and_held_back_until_its_retry_is_due():
    src = sources([emp("E1"), emp("E2")])
    held = run(_collided(src, E1=("e1@example.com", True)))
    assert set(held.objects["user"]) == {"E2"} and codes(held) == {"E1": "unmapped_in_workbox"}
    assert held.rejects[0].source == "workbox" and held.rejects[0].payload["emailAddr"] == "e1@example.com"
    due = run(_collided(src, E1=("e1@example.com", False)))  # tried again: planned, still quarantined
    assert set(due.objects["user"]) == {"E1", "E2"} and codes(due) == {"E1": "unmapped_in_workbox"}
    moved = run(_collided(src, E1=("old@example.com", True)))  # HR gave another address: tried at once
    assert set(moved.objects["user"]) == {"E1", "E2"} and codes(moved) == {}


def test_a_member_in_the_ledger_whose_new_address_collided_is_frozen_never_deleted():
    ledger = as_ledger(run(sources([emp("E1")])).objects)
    src = _collided(sources([emp("E1", work_email="taken@example.com")]), E1=("taken@example.com", True))
    desired = run(src, ledger)
    assert desired.objects["user"]["E1"] == ledger[("user", "E1")] and ("user", "E1") in desired.frozen
    assert make_plan(desired.objects, ledger) == []  # no update, and above all no delete


def test_desired_never_gives_a_frozen_members_email_to_another():
    ledger = as_ledger(run(sources([emp("E1", work_email="x@example.com")])).objects)
    desired = run(
        sources([emp("E1", work_email="not-an-address"), emp("E2", work_email="x@example.com")]), ledger
    )
    emails = [u["emailAddr"].lower() for u in desired.objects["user"].values()]
    assert len(emails) == len(set(emails))


# ------------------------------------------------------------------------------------- departments


@pytest.mark.parametrize(
    ("depts", "expected_kept", "expected_rejects"),
    [
        ([dept("A"), dept("B", "A")], {"A", "B"}, {}),
        ([dept("A", "A")], set(), {"A": "department_cycle"}),
        ([dept("A", "B"), dept("B", "A")], set(), {"A": "department_cycle", "B": "department_cycle"}),
        ([dept("A", "C"), dept("B", "A"), dept("C", "B"), dept("D", "C"), dept("R")], {"R"},
         {"A": "department_cycle", "B": "department_cycle", "C": "department_cycle",
          "D": "parent_rejected"}),
        ([dept("A", "ZZ"), dept("B", "A"), dept("C", "B")], set(),
         {"A": "unknown_parent", "B": "parent_rejected", "C": "parent_rejected"}),
        ([dept("A", name=""), dept("B", "A")], set(), {"A": "missing_name", "B": "parent_rejected"}),
        ([dept("A", name="N" * 100)], {"A"}, {}),
        ([dept("A", name="N" * 101)], set(), {"A": "field_too_long"}),
        ([dept("A", name="Sales\nKorea")], set(), {"A": "invalid_characters"}),
        ([dept("A", name="Sales\u200b")], set(), {"A": "invalid_characters"}),
        # inactive departments
        ([dept("A", active=False)], set(), {}),
        ([dept("A", active=False), dept("B", "A")], {"A", "B"}, {}),  # active child keeps it
        ([dept("A", active=False), dept("B", "A", active=False)], set(), {}),
        ([dept("A", active=False), dept("B", "A", active=False), dept("C", "B")], {"A", "B", "C"}, {}),
    ],
)  # fmt: skip
def test_department_tree(depts, expected_kept, expected_rejects):
    desired = run(sources([], depts))
    assert set(desired.objects["dept"]) == expected_kept
    assert codes(desired) == expected_rejects
    assert all(r.kind == "department" for r in desired.rejects)
    for code in expected_kept:
        parent = next(d["parent_code"] for d in depts if d["code"] == code)
        assert desired.objects["dept"][code] == {
            "name": next(d["name"] for d in depts if d["code"] == code),
            "sortOrd": "0",
            "uprDeptExternalKey": parent or "#",
        }


def test_rejects_are_reported_once_per_record():
    depts = [dept("A", "C"), dept("B", "A"), dept("C", "B"), dept("D", "C"), dept("E", "ZZ"), dept("F", "E")]
    desired = run(sources([], depts))
    ids = [r.record_id for r in desired.rejects]
    assert sorted(ids) == sorted(set(ids)) == ["A", "B", "C", "D", "E", "F"]


@pytest.mark.parametrize(
    ("member_status", "kept"),
    [("Active", True), ("Leave", True), ("Terminated", False)],
)
def test_inactive_department_kept_while_it_has_members(member_status, kept):
    depts = [dept("HQ"), dept("OLD", "HQ", active=False)]
    desired = run(sources([emp(department_code="OLD", employment_status=member_status)], depts))
    assert ("OLD" in desired.objects["dept"]) is kept
    assert "HQ" in desired.objects["dept"]


def test_inactive_parent_kept_for_a_member_deep_below():
    depts = [dept("A", active=False), dept("B", "A", active=False), dept("C", "B", active=False)]
    desired = run(sources([emp(department_code="C")], depts))
    assert set(desired.objects["dept"]) == {"A", "B", "C"}


def test_members_of_rejected_departments_are_rejected():
    depts = [dept("A", "B"), dept("B", "A"), dept("C", "A"), dept("OK")]
    desired = run(sources([emp("E1", department_code="C"), emp("E2", department_code="OK")], depts))
    assert set(desired.objects["user"]) == {"E2"}
    assert codes(desired)["E1"] == "department_rejected"


def test_dept_sort_order_is_a_constant():
    desired = run(sources([], [dept("A"), dept("B", "A")]), dept_sort_order="5")
    assert {d["sortOrd"] for d in desired.objects["dept"].values()} == {"5"}


# ---------------------------------------------------------------------------- grades and positions


def test_one_grade_and_position_per_distinct_name():
    employees = [
        emp("E1", job_grade="부장", job_title="Engineer"),
        emp("E2", job_grade=" 부장 ", job_title="Engineer"),
        emp("E3", job_grade="과장", job_title="Designer"),
        emp("E4", job_grade=None, job_title=None),
        emp("E5", job_grade="Lost", job_title="Lost", employment_status="Terminated"),
    ]
    desired = run(sources(employees), grade_order=("사원", "과장", "부장"))
    assert desired.objects["job-grade"] == {
        keys.grade_key("부장"): {"name": "부장", "sortOrd": 3},
        keys.grade_key("과장"): {"name": "과장", "sortOrd": 2},
    }
    assert desired.objects["job-position"] == {
        keys.position_key("Engineer"): {"name": "Engineer", "sortOrd": 1000},
        keys.position_key("Designer"): {"name": "Designer", "sortOrd": 1000},
    }
    users = desired.objects["user"]
    assert users["E1"]["gradeExternalKey"] == users["E2"]["gradeExternalKey"] == keys.grade_key("부장")
    assert "gradeExternalKey" not in users["E4"] and "positionExternalKey" not in users["E4"]


@pytest.mark.parametrize(
    ("order", "name", "expected"),
    [((), "Manager", 1000), (("Staff", "Manager"), "Manager", 2), (("Staff", "Manager"), "manager", 1000)],
)
def test_position_sort_order_from_config_only(order, name, expected):
    desired = run(sources([emp(job_title=name)]), position_order=order)
    assert desired.objects["job-position"][keys.position_key(name)]["sortOrd"] == expected


def test_adding_a_grade_changes_no_other_grade():
    before = run(sources([emp("E1", job_grade="B")]), grade_order=("A", "B"))
    after = run(sources([emp("E1", job_grade="B"), emp("E2", job_grade="A0")]), grade_order=("A", "B"))
    key = keys.grade_key("B")
    assert after.objects["job-grade"][key] == before.objects["job-grade"][key]
    assert after.objects["user"]["E1"] == before.objects["user"]["E1"]


# --------------------------------------------------------------------- THE SAFETY RULE (frozen keys)

BAD_EMPLOYEE_EDITS = {
    "malformed_email": {"work_email": "ann-at-example.com"},
    "missing_email": {"work_email": None},
    "lookalike_email": {"work_email": "\u04351@example.com"},
    "name_too_long": {"first_name": "A" * 120},
    "control_character": {"last_name": "Lee\x00"},
    "phone_too_long": {"work_phone": "9" * 40},
    "grade_too_long": {"job_grade": "G" * 101},
    "missing_department": {"department_code": None},
    "unknown_department": {"department_code": "GONE"},
}


def _company():
    depts = [dept("HQ"), dept("D1", "HQ"), dept("D2", "HQ")]
    employees = [
        emp("E1", department_code="D1", job_grade="G-solo", job_title="T-solo", work_phone="02-1"),
        emp("E2", department_code="D2", job_grade="G1", job_title="Engineer"),
    ]
    return depts, employees


@pytest.mark.parametrize("edit", BAD_EMPLOYEE_EDITS.values(), ids=BAD_EMPLOYEE_EDITS.keys())
def test_rejected_member_in_ledger_is_frozen_with_what_it_references(edit):
    depts, employees = _company()
    ledger = as_ledger(run(sources(employees, depts)).objects)
    employees[0] = {**employees[0], **edit}
    desired = run(sources(employees, depts), ledger)

    assert "E1" in codes(desired)
    assert desired.objects["user"]["E1"] == ledger[("user", "E1")]
    assert ("user", "E1") in desired.frozen
    # the grade and position only E1 used are kept at the ledger's body (no member left deriving them)
    assert (
        desired.objects["job-grade"][keys.grade_key("G-solo")]
        == ledger[("job-grade", keys.grade_key("G-solo"))]
    )
    assert (
        desired.objects["job-position"][keys.position_key("T-solo")]
        == ledger[("job-position", keys.position_key("T-solo"))]
    )
    assert make_plan(desired.objects, ledger) == []


def test_rejected_member_not_in_ledger_is_not_created():
    depts, employees = _company()
    employees.append(emp("E3", work_email="broken"))
    desired = run(sources(employees, depts))
    assert "E3" not in desired.objects["user"]
    assert ("user", "E3") not in desired.frozen


def test_frozen_member_keeps_an_inactive_department_it_sits_in():
    depts = [dept("HQ"), dept("OLD", "HQ", active=False)]
    employees = [emp("E1", department_code="OLD")]
    ledger = as_ledger(run(sources(employees, depts)).objects)
    desired = run(sources([emp("E1", department_code="OLD", work_email="x")], depts), ledger)
    assert desired.objects["dept"]["OLD"] == ledger[("dept", "OLD")]
    assert make_plan(desired.objects, ledger) == []


@pytest.mark.parametrize(
    "bad_depts",
    [
        [dept("HQ"), dept("D1", "HQ", name=""), dept("D2", "HQ")],  # D1 loses its name
        [dept("HQ"), dept("D1", "NOWHERE"), dept("D2", "HQ")],  # D1 gets an unknown parent
        [dept("HQ", "D2"), dept("D1", "HQ"), dept("D2", "HQ")],  # HQ ↔ D2 cycle; D1 under it
        [dept("HQ", name="H" * 200), dept("D1", "HQ"), dept("D2", "HQ")],  # root too long: all below
    ],
)
def test_rejected_department_freezes_itself_its_members_and_parents(bad_depts):
    depts, employees = _company()
    ledger = as_ledger(run(sources(employees, depts)).objects)
    desired = run(sources(employees, bad_depts), ledger)
    assert desired.rejects
    ops = make_plan(desired.objects, ledger)
    assert [op for op in ops if op.action == "delete"] == []
    assert ops == []  # nothing else changed, so nothing at all


def test_records_rejected_before_merge_are_frozen():
    """Unparseable or duplicate-id records (stage rejects) never reach merge, yet must not be deleted."""
    depts, employees = _company()
    ledger = as_ledger(run(sources(employees, depts)).objects)
    rejected = (
        Reject("infinityhr", "employee", "E1", "duplicate_id", "id 'E1' appears 2 times", {}),
        Reject("infinityhr", "department", "D1", "unparseable", "bad XML", {}),
    )
    desired = run(sources(employees[1:], [dept("HQ"), dept("D2", "HQ")], rejected=rejected), ledger)
    assert {("user", "E1"), ("dept", "D1")} <= desired.frozen
    assert make_plan(desired.objects, ledger) == []
    assert [r.reason_code for r in desired.rejects] == ["duplicate_id", "unparseable"]


def test_rejected_whosoff_only_member_in_ledger_is_frozen():
    ledger = as_ledger(run(sources([emp()], wo_users=[wo(7)]), include_whosoff_only=True).objects)
    desired = run(sources([emp()], wo_users=[wo(7, email="wo7-at-example")]), ledger,
                  include_whosoff_only=True)  # fmt: skip
    assert codes(desired) == {"7": "malformed_email"}
    assert desired.objects["user"]["wo-7"] == ledger[("user", "wo-7")]
    assert [op.action for op in make_plan(desired.objects, ledger)] == []


# -------------------------------------------------- property: a bad record never causes a delete

_EMP_CORRUPTIONS = [
    {"work_email": None},
    {"work_email": "no-at-sign"},
    {"work_email": "\u0430@example.com"},
    {"first_name": "X" * 150},
    {"first_name": "Ann\x1f"},
    {"mobile_phone": "1" * 101},
    {"job_title": "T\u2066"},
    {"department_code": "MISSING"},
    {"department_code": None},
    {"work_email": "e0@example.com"},  # takes another member's address
]
_DEPT_CORRUPTIONS = [
    {"name": None},
    {"name": "N" * 101},
    {"name": "bad\x00"},
    {"parent_code": "NOWHERE"},
    {"parent_code": "SELF"},
    {"parent_code": "CHILD"},
]


@st.composite
def companies(draw):
    n_depts = draw(st.integers(1, 6))
    depts = []
    for i in range(n_depts):
        parent = None if i == 0 else draw(st.one_of(st.none(), st.integers(0, i - 1).map(lambda p: f"D{p}")))
        depts.append(dept(f"D{i}", parent, active=draw(st.booleans())))
    grades = ["G1", "G2", "부장", None]
    employees = [
        emp(
            f"E{i}",
            department_code=f"D{draw(st.integers(0, n_depts - 1))}",
            job_grade=draw(st.sampled_from(grades)),
            job_title=draw(st.sampled_from(["Eng", "Ops", None])),
            employment_status=draw(st.sampled_from(["Active", "Active", "Leave"])),
        )
        for i in range(draw(st.integers(0, 8)))
    ]
    return depts, employees


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(company=companies(), data=st.data())
def test_corrupting_records_never_causes_a_delete(company, data):
    depts, employees = company
    ledger = as_ledger(run(sources(employees, depts)).objects)
    bad_employees = list(employees)
    for i in data.draw(st.sets(st.integers(0, max(len(employees) - 1, 0)), max_size=3)) if employees else ():
        edit = data.draw(st.sampled_from(_EMP_CORRUPTIONS))
        bad_employees[i] = {**employees[i], **edit}
    bad_depts = list(depts)
    for i in data.draw(st.sets(st.integers(0, len(depts) - 1), max_size=2)):
        edit = dict(data.draw(st.sampled_from(_DEPT_CORRUPTIONS)))
        if edit.get("parent_code") == "SELF":
            edit["parent_code"] = depts[i]["code"]
        elif edit.get("parent_code") == "CHILD":
            children = [d["code"] for d in depts if d["parent_code"] == depts[i]["code"]]
            edit["parent_code"] = children[0] if children else "NOWHERE"
        bad_depts[i] = {**depts[i], **edit}
    desired = run(sources(bad_employees, bad_depts), ledger)
    ops = make_plan(desired.objects, ledger)
    assert [(op.kind, op.key) for op in ops if op.action == "delete"] == []
    # every rejected record that WORKBOX holds stays exactly as WORKBOX holds it
    for rej in desired.rejects:
        kind = {"employee": "user", "department": "dept"}[rej.kind]
        key = keys.source_key(str(rej.record_id))
        if (kind, key) in ledger:
            assert desired.objects[kind][key] == ledger[(kind, key)]


@settings(max_examples=50, deadline=None)
@given(company=companies())
def test_merge_is_deterministic_and_idempotent_against_its_own_result(company):
    depts, employees = company
    first = run(sources(employees, depts))
    again = run(sources(list(reversed(employees)), list(reversed(depts))))
    assert first.objects == again.objects
    ledger = as_ledger(first.objects)
    assert make_plan(run(sources(employees, depts), ledger).objects, ledger) == []
