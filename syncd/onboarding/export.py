"""``syncd keys export``: the external key syncd will use for every entity of the desired directory,
beside what an admin recognises, one sheet (xlsx) or file (csv) per kind.  Nothing is sent.

Every value is written literally: xlsx cells are typed as text (a name starting with ``=`` is not a
formula), and in csv such a value is prefixed with ``'`` (the spreadsheet convention for "text"), so
opening the file never runs anything.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

KINDS = ("dept", "user", "job-grade", "job-position")
HEADERS: dict[str, tuple[str, ...]] = {
    "dept": ("external key", "name", "parent external key", "parent name", "full path"),
    "user": ("external key", "name", "e-mail", "department external key", "department name"),
    "job-grade": ("external key", "name"),
    "job-position": ("external key", "name"),
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def rows(kind: str, desired: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[tuple[str, ...]]:
    """The rows of one kind, sorted by key."""
    depts = desired.get("dept", {})
    out: list[tuple[str, ...]] = []
    for key, body in sorted(desired.get(kind, {}).items()):
        name = str(body.get("name") or "")
        if kind == "dept":
            parent = str(body.get("uprDeptExternalKey") or "#")
            parent_name = str(depts.get(parent, {}).get("name") or "") if parent != "#" else ""
            out.append((key, name, "" if parent == "#" else parent, parent_name, full_path(key, depts)))
        elif kind == "user":
            dept = str(body.get("deptExternalKey") or "")
            out.append(
                (
                    key,
                    name,
                    str(body.get("emailAddr") or ""),
                    dept,
                    str(depts.get(dept, {}).get("name") or ""),
                )
            )
        else:
            out.append((key, name))
    return out


def full_path(key: str, depts: Mapping[str, Mapping[str, Any]]) -> str:
    """``Top / Middle / This`` by department names (a cycle or unknown parent stops the walk)."""
    names: list[str] = []
    seen: set[str] = set()
    while key in depts and key not in seen:
        seen.add(key)
        names.append(str(depts[key].get("name") or key))
        key = str(depts[key].get("uprDeptExternalKey") or "#")
    return " / ".join(reversed(names))


def write_xlsx(path: Path, sheets: Mapping[str, Sequence[tuple[str, ...]]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    for empty in list(book.worksheets):  # a new workbook has one empty sheet
        book.remove(empty)
    for kind, data in sheets.items():
        sheet = book.create_sheet(kind)
        for r, row in enumerate([HEADERS[kind], *data], start=1):
            for c, value in enumerate(row, start=1):
                cell = sheet.cell(row=r, column=c)
                cell.value = value
                cell.data_type = "s"  # text, literally: never a formula
    book.save(path)


def write_csv(path: Path, kind: str, data: Iterable[tuple[str, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8-sig") as fh:  # the BOM: Excel reads UTF-8
        out = csv.writer(fh)
        out.writerow(HEADERS[kind])
        for row in data:
            out.writerow([f"'{v}" if v.startswith(_FORMULA_START) else v for v in row])


def export(
    desired: Mapping[str, Mapping[str, Mapping[str, Any]]], kinds: Sequence[str], fmt: str, out_dir: Path
) -> list[tuple[Path, str, int]]:
    """Write the files; (path, kind, rows) of each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sheets = {kind: rows(kind, desired) for kind in kinds}
    if fmt == "xlsx":
        path = out_dir / "syncd-keys.xlsx"
        write_xlsx(path, sheets)
        return [(path, kind, len(data)) for kind, data in sheets.items()]
    written = []
    for kind, data in sheets.items():
        path = out_dir / f"syncd-keys-{kind}.csv"
        write_csv(path, kind, data)
        written.append((path, kind, len(data)))
    return written
