"""``syncd keys fill``: fill the external-key column of WORKBOX's organisation mapping form.

The form (downloaded from the NCP console: WORKBOX > Developers > Connect organisation) lists the
entities that already exist in WORKBOX; its layout is not published.  The header row and the columns
are found by their titles, in Korean or English; each row is matched to the desired directory
(members by e-mail, case-insensitively; departments by full path, else by a unique name; grades and
positions by name) and its external-key cell filled.  Nothing is guessed: a row with no match or two
candidates is reported and left empty.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.errors import UsageError
from syncd.onboarding.export import full_path

#: column role → the titles it goes by (compared without case, spaces and punctuation)
TITLES: dict[str, tuple[str, ...]] = {
    "key": (
        "external key", "externalkey", "external id",
        "외부키", "외부 키", "연동키", "연동 키",
    ),
    "email": (
        "e-mail", "email", "email address", "mail", "login id",
        "이메일", "이메일 주소", "메일", "로그인 id", "아이디",
    ),
    "path": (
        "path", "full path", "department path",
        "경로", "부서 경로", "조직 경로",
    ),
    "name": (
        "name", "member name", "department name", "grade name", "position name",
        "이름", "성명", "부서명", "부서 이름",
        "직급명", "직급", "직책명", "직책",
    ),
}  # fmt: skip
#: what each kind's rows are matched by (the key column is always needed)
NEEDED = {"user": ("email",), "dept": ("name",), "job-grade": ("name",), "job-position": ("name",)}
HEADER_ROWS = 30


def _norm(title: object) -> str:
    return re.sub(r"[\s_\-*().:/]+", "", str(title or "")).lower()


_ROLE_OF = {_norm(t): role for role, titles in TITLES.items() for t in titles}


@dataclass
class Layout:
    sheet: str
    header_row: int
    #: role → (column number, the title as written)
    columns: dict[str, tuple[int, str]]

    def describe(self) -> str:
        used = ", ".join(f"{role} = column {col} ({title!r})" for role, (col, title) in self.columns.items())
        return f"sheet {self.sheet!r}, header row {self.header_row}: {used}"


@dataclass
class Report:
    layout: Layout
    matched: list[tuple[int, str, str]] = field(default_factory=list)  # (row, what, key)
    kept: list[tuple[int, str, str]] = field(default_factory=list)  # the row had a key already
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # in WORKBOX, not in HR
    ambiguous: list[tuple[int, str, list[str]]] = field(default_factory=list)
    #: desired entities no row names: they will be created
    absent: list[str] = field(default_factory=list)


def find_layout(book: Any, kind: str) -> Layout:
    """The first sheet and row whose titles include the external-key column and what ``kind`` needs."""
    seen: list[str] = []
    for sheet in book.worksheets:
        for r, row in enumerate(sheet.iter_rows(max_row=HEADER_ROWS, values_only=True), start=1):
            columns: dict[str, tuple[int, str]] = {}
            for c, value in enumerate(row, start=1):
                role = _ROLE_OF.get(_norm(value))
                if role and role not in columns:
                    columns[role] = (c, str(value))
            if "key" in columns and all(n in columns for n in NEEDED[kind]):
                return Layout(sheet.title, r, columns)
            if columns:
                seen.append(f"{sheet.title!r} row {r}: " + ", ".join(repr(t) for _, t in columns.values()))
    need = ", ".join(f"{role} ({' / '.join(TITLES[role][:4])} …)" for role in ("key", *NEEDED[kind]))
    found = "; ".join(seen) or "no recognised column title in the first 30 rows of any sheet"
    raise UsageError(
        f"the form has no header row with the columns a {kind} form needs: {need}; found {found}"
    )


def _index(
    kind: str, desired: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> dict[str, dict[str, list[str]]]:
    """match value → desired keys, per role (several keys: ambiguous)."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    depts = desired.get("dept", {})
    for key, body in desired.get(kind, {}).items():
        if kind == "user":
            out["email"][str(body.get("emailAddr") or "").strip().lower()].append(key)
        else:
            out["name"][_norm(body.get("name"))].append(key)
            if kind == "dept":
                out["path"][_path(full_path(key, depts))].append(key)
    return out


def _path(text: object) -> str:
    return "/".join(_norm(part) for part in re.split(r"\s*[/>\\|]\s*", str(text or "")) if part.strip())


def fill(form: Path, out: Path, kind: str, desired: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Report:
    """Fill the form's external-key cells; the filled copy goes to ``out``."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(form)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot read {form} as an xlsx workbook: {exc}") from None
    layout = find_layout(book, kind)
    report = Report(layout)
    sheet = book[layout.sheet]
    index = _index(kind, desired)
    col = {role: c for role, (c, _) in layout.columns.items()}
    named: set[str] = set()
    for r in range(layout.header_row + 1, sheet.max_row + 1):
        cells = {role: sheet.cell(row=r, column=c).value for role, c in col.items()}
        what = str(cells.get("email") or cells.get("path") or cells.get("name") or "").strip()
        if not what:
            continue
        candidates = _candidates(kind, cells, index)
        existing = str(cells.get("key") or "").strip()
        if existing:
            report.kept.append((r, what, existing))
            named.add(existing)
            continue
        if len(candidates) == 1:
            sheet.cell(row=r, column=col["key"]).value = candidates[0]
            sheet.cell(row=r, column=col["key"]).data_type = "s"
            report.matched.append((r, what, candidates[0]))
            named.add(candidates[0])
        elif candidates:
            report.ambiguous.append((r, what, sorted(candidates)))
        else:
            report.unmatched.append((r, what))
    report.absent = sorted(set(desired.get(kind, {})) - named)
    book.save(out)
    return report


def _candidates(
    kind: str, cells: Mapping[str, Any], index: Mapping[str, Mapping[str, list[str]]]
) -> list[str]:
    if kind == "user":
        return list(index["email"].get(str(cells.get("email") or "").strip().lower(), []))
    if kind == "dept" and cells.get("path"):
        by_path = index["path"].get(_path(cells["path"]), [])
        if by_path:
            return list(by_path)
    return list(index["name"].get(_norm(cells.get("name")), []))
