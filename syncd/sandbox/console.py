"""The WORKBOX console's side of the sandbox (vendor contract §3.3): a tenant populated by hand before
syncd, and the organisation-mapping form an admin downloads, fills and uploads.

Hand-made entities carry internal keys that start with ``~`` (``~hand-user-0001``): the API cannot
address them (``E900``), yet a create whose e-mail one of them holds collides (``E902``), as on a real
tenant.  The form lists a kind's unmapped entities (ID, what an admin recognises, an empty external-key
column); uploading it re-keys each row that has a key, and every reference to it.
"""

from __future__ import annotations

import io
from typing import Any

from .data import Company
from .workbox_store import SCHEMAS, TOP, WorkboxError, WorkboxState

HAND = "~hand-"
#: the form's columns per kind (titles as a Korean console would show them)
FORM_COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("ID", "이름", "이메일", "부서", "외부키"),
    "dept": ("ID", "부서명", "경로", "외부키"),
    "job-grade": ("ID", "직급명", "외부키"),
    "job-position": ("ID", "직책명", "외부키"),
}
_PREFIX = {"user": "user", "dept": "dept", "job-grade": "grade", "job-position": "position"}


def populate_by_hand(state: WorkboxState, company: Company, members: int, extra: int = 3) -> None:
    """The first ``members`` active employees made by hand (their departments, grades and positions
    too), plus ``extra`` members HR does not know; all without external keys."""
    people = [e for e in company.employee_list() if e.status == "Active"][:members]
    dept_key: dict[str, str] = {}

    def dept(code: str) -> str:
        if code in dept_key:
            return dept_key[code]
        d = company.departments[code]
        parent = dept(d.parent_code) if d.parent_code else TOP
        key = dept_key[code] = f"{HAND}dept-{len(dept_key) + 1:04d}"
        state.dept[key] = {"name": d.name, "sortOrd": "0", "uprDeptExternalKey": parent}
        state._index("dept", key, state.dept[key])
        return key

    named: dict[tuple[str, str], str] = {}

    def named_key(kind: str, name: str) -> str:
        if (kind, name) not in named:
            key = named[(kind, name)] = f"{HAND}{_PREFIX[kind]}-{len(named) + 1:04d}"
            state[kind][key] = {"name": name, "sortOrd": 1000}
        return named[(kind, name)]

    for i, emp in enumerate(people, start=1):
        key = f"{HAND}user-{i:04d}"
        body = {
            "name": f"{emp.first_name} {emp.last_name}", "emailAddr": emp.work_email,
            "deptExternalKey": dept(emp.department_code),
            "gradeExternalKey": named_key("job-grade", emp.job_grade),
            "positionExternalKey": named_key("job-position", emp.job_title),
        }  # fmt: skip
        state.user[key] = body
        state._index("user", key, body)
    for j in range(extra):
        key = f"{HAND}user-{len(people) + j + 1:04d}"
        body = {"name": f"Contractor {j + 1}", "emailAddr": f"contractor{j + 1}@hand.example"}
        state.user[key] = body
        state._index("user", key, body)


def _path(state: WorkboxState, key: str) -> str:
    names, seen = [], set()
    while key in state.dept and key not in seen:
        seen.add(key)
        names.append(state.dept[key]["name"])
        key = state.dept[key]["uprDeptExternalKey"]
    return " > ".join(reversed(names))


def mapping_form(state: WorkboxState, kind: str) -> bytes:
    """The xlsx form of ``kind``'s unmapped entities."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "매핑"
    sheet.append([f"조직 연동 외부키 매핑 ({kind})"])
    sheet.append([])
    sheet.append(list(FORM_COLUMNS[kind]))
    for key, body in sorted(state[kind].items()):
        if not key.startswith(HAND):
            continue
        ident = key[len("~") :]
        if kind == "user":
            dept = state.dept.get(str(body.get("deptExternalKey")), {}).get("name", "")
            sheet.append([ident, body["name"], body["emailAddr"], dept, None])
        elif kind == "dept":
            sheet.append([ident, body["name"], _path(state, key), None])
        else:
            sheet.append([ident, body["name"], None])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload_form(state: WorkboxState, kind: str, data: bytes) -> dict[str, Any]:
    """Apply a filled form: each row with an ID and an external key re-keys that entity."""
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    except Exception as exc:  # a bad upload is the uploader's error, never a crash
        raise WorkboxError("E902", f"the upload is not an xlsx workbook: {type(exc).__name__}") from None
    columns = FORM_COLUMNS[kind]
    mapped, skipped = 0, 0
    for row in sheet.iter_rows(min_row=4, values_only=True):
        ident, new = (row[0] if row else None), (row[len(columns) - 1] if len(row) >= len(columns) else None)
        if not ident or not new:
            skipped += 1 if ident else 0
            continue
        old = f"~{ident}"
        if old not in state[kind]:
            raise WorkboxError("E902", f"row with ID {ident}: no such unmapped {kind}")
        if str(new) in state[kind]:
            raise WorkboxError("E904", f"external key {new} is already used ({kind})")
        _rekey(state, kind, old, str(new))
        mapped += 1
    return {"kind": kind, "mapped": mapped, "left_unmapped": skipped}


def _rekey(state: WorkboxState, kind: str, old: str, new: str) -> None:
    body = state[kind].pop(old)
    state._unindex(kind, old, body)
    state[kind][new] = body
    state._index(kind, new, body)
    field = {
        "dept": "deptExternalKey",
        "job-grade": "gradeExternalKey",
        "job-position": "positionExternalKey",
    }
    if kind in field:
        for key, user in list(state.user.items()):
            if user.get(field[kind]) == old:
                state._unindex("user", key, user)
                user[field[kind]] = new
                state._index("user", key, user)
    if kind == "dept":
        for key, dept in list(state.dept.items()):
            if dept.get("uprDeptExternalKey") == old:
                state._unindex("dept", key, dept)
                dept["uprDeptExternalKey"] = new
                state._index("dept", key, dept)


def by_hand(
    state: WorkboxState, action: str, kind: str, keys: list[str], fields: dict[str, Any]
) -> dict[str, Any]:
    """A change made in WORKBOX's admin screens, which syncd cannot see (drift): ``delete`` removes
    the entities (a member's e-mail address is freed; what references a department or grade keeps
    the reference, as an admin screen would leave it), ``edit`` sets ``fields`` on each body."""
    store = state[kind]
    missing = [k for k in keys if k not in store]
    if missing:
        raise WorkboxError("E904", f"no such {kind}: {', '.join(missing[:5])}")
    for key in keys:
        body = store[key]
        state._unindex(kind, key, body)
        if action == "delete":
            del store[key]
            continue
        unknown = sorted(set(fields) - set(SCHEMAS[kind]))
        if unknown:
            state._index(kind, key, body)
            raise WorkboxError("E902", f"unknown field(s): {', '.join(unknown)}")
        body.update(fields)
        state._index(kind, key, body)
    return {"action": action, "kind": kind, "changed": len(keys)}
