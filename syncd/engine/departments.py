"""The department tree: which InfinityHR departments are valid, which are kept, and their bodies.  Pure.

* key = ``DepartmentCode``, parent = ``ParentDepartmentCode`` (``#`` at the top in WORKBOX);
* a department with a bad name, an unknown parent or a parent chain that forms a cycle is rejected,
  and so is every department under a rejected one;
* an inactive department stays while it has members or kept child departments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

from syncd.engine import keys
from syncd.engine.validate import Payload, clean, department_name_problem

Body = dict[str, Any]
#: (department code, reason_code, reason, payload) of a rejected department, in the order found
DeptReject = tuple[str, str, str, Payload]


def valid_departments(departments: Mapping[str, Payload]) -> tuple[dict[str, Payload], list[DeptReject]]:
    """Valid departments by code, and the rejected ones with their reasons."""
    rejects: list[DeptReject] = []
    named: dict[str, Payload] = {}
    for code, dept in sorted(departments.items()):
        problem = department_name_problem(clean(dept.get("name")))
        if problem is None:
            named[code] = dept
        else:
            rejects.append((code, *problem, dept))
    tree = _Tree(named, departments, rejects)
    for code in sorted(named):
        tree.resolve(code)
    return {code: dept for code, dept in named.items() if tree.status.get(code)}, rejects


class _Tree:
    """Walks each department's parent chain once, deciding every department on it."""

    def __init__(self, ok: Mapping[str, Payload], known: Mapping[str, Payload], out: list[DeptReject]):
        self.ok, self.known, self.out = ok, known, out
        self.status: dict[str, bool] = {}

    def resolve(self, code: str) -> None:
        chain: list[str] = []
        cur: str | None = code
        good = True
        while cur is not None and cur not in self.status:
            if cur in chain:
                chain = self._cycle(chain, cur)
                good = False
                break
            chain.append(cur)
            parent = clean(self.ok[cur].get("parent_code"))
            if parent is not None and parent not in self.ok:
                self._orphan(cur, parent)
                chain.pop()
                good = False
                break
            cur = parent
        if cur is not None and cur in self.status:
            good = good and self.status[cur]
        for member in reversed(chain):
            self.status[member] = good
            if not good:
                parent = clean(self.ok[member].get("parent_code"))
                self._reject(member, "parent_rejected", f"parent department {parent!r} was rejected")

    def _cycle(self, chain: list[str], cur: str) -> list[str]:
        """Reject every member of the cycle that starts at ``cur``; the chain below it remains."""
        cycle = chain[chain.index(cur) :]
        text = " → ".join([*cycle, cur])
        for member in cycle:
            self.status[member] = False
            self._reject(member, "department_cycle", f"parent chain forms a cycle: {text}")
        return chain[: chain.index(cur)]

    def _orphan(self, code: str, parent: str) -> None:
        self.status[code] = False
        known = parent in self.known
        self._reject(
            code,
            "parent_rejected" if known else "unknown_parent",
            f"parent department {parent!r} " + ("was rejected" if known else "does not exist"),
        )

    def _reject(self, code: str, reason_code: str, reason: str) -> None:
        self.out.append((code, reason_code, reason, self.ok[code]))


def kept_departments(depts: Mapping[str, Payload], used: Collection[str | None]) -> set[str]:
    """Codes of the departments WORKBOX should hold: active ones, and inactive ones while they have
    members (``used``: the department keys members reference) or kept child departments."""
    children: dict[str | None, list[str]] = defaultdict(list)
    for code, dept in depts.items():
        children[clean(dept.get("parent_code"))].append(code)
    kept: set[str] = set()

    def keep(code: str) -> bool:
        keep_children = [keep(child) for child in sorted(children.get(code, ()))]
        if depts[code].get("is_active", True) or keys.source_key(code) in used or any(keep_children):
            kept.add(code)
            return True
        return False

    for root in sorted(children.get(None, ())):
        keep(root)
    return kept


def department_body(dept: Payload, sort_order: str) -> Body:
    parent = clean(dept.get("parent_code"))
    return {
        "name": clean(dept.get("name")),
        "sortOrd": sort_order,
        "uprDeptExternalKey": keys.source_key(parent) if parent else "#",
    }
