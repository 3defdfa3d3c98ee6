"""PageAudit: which consistency check of a paged read failed, in words an operator can act on."""

from __future__ import annotations

from syncd.vendors.paging import PageAudit


def test_a_consistent_read_has_no_problem() -> None:
    audit = PageAudit("EmployeeID")
    audit.add(1, 5, ["A", "B", "B"], 3)  # a repeat within one page is the quarantine's business
    audit.add(2, 5, ["C", None], 2)
    assert audit.problem() is None


def test_each_check_names_itself() -> None:
    short = PageAudit("EmployeeID")
    short.add(1, 200, [str(i) for i in range(100)], 100)
    short.add(2, 200, [str(i) for i in range(100, 155)], 55)
    assert short.problem() == "read 155 of TotalCount 200"

    repeated = PageAudit("EmployeeID")
    repeated.add(1, 4, ["A", "B"], 2)
    repeated.add(2, 4, ["B", "C"], 2)
    assert repeated.problem() == "EmployeeID B on pages 1 and 2"

    changed = PageAudit("EmployeeID")
    changed.add(1, 200, [], 100)
    changed.add(2, 199, [], 99)
    assert changed.problem() == "TotalCount changed from 200 to 199 between pages 1 and 2"


def test_several_failures_are_all_named() -> None:
    audit = PageAudit("EmployeeID")
    audit.add(1, 6, ["A", "B", "C"], 3)
    audit.add(2, 5, ["B", "C"], 2)
    assert audit.problem() == (
        "TotalCount changed from 6 to 5 between pages 1 and 2; "
        "EmployeeID B on pages 1 and 2 (and 1 more repeats)"
    )
