"""Field validation of source records against WORKBOX's limits.  Pure.

A record that fails gets one specific ``(reason_code, reason)``; the merge turns it into a
:class:`Reject` (kept in the quarantine for inspection) and never into a delete.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Body = dict[str, Any]
Payload = Mapping[str, Any]
#: (reason_code, reason) of a record that failed validation
Problem = tuple[str, str]

#: WORKBOX field limits (docs/vendor-contract.md §3.2); ``id``: a source record's id, as long as a
#: staging table's ``id`` column holds (``varchar(64)``) on every database.  WORKBOX's own externalKey
#: limit (36, ``[A-Za-z0-9._-]``) is met for any id up to that by :func:`syncd.engine.keys.source_key`.
LIMITS = {
    "name": 100, "emailAddr": 100, "telNo": 30, "cphNo": 100, "dept_name": 100, "grade": 100, "id": 64,
}  # fmt: skip
EMAIL_RE = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
NAME_PARTS = ("first_name", "middle_name", "last_name", "preferred_name")


@dataclass(frozen=True)
class Reject:
    """A source record that failed validation."""

    source: str
    kind: str
    record_id: str | None
    reason_code: str
    reason: str
    payload: Mapping[str, Any]


def clean(value: Any) -> str | None:
    """The value as NFC text without surrounding blanks; None when nothing is left."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def usable(value: Any, limit: int) -> str | None:
    """A WhosOff value only fills a gap if it would pass validation; a bad one is ignored."""
    text = clean(value)
    return text if text is not None and len(text) <= limit and not CONTROL.search(text) else None


def id_problem(record_id: str, what: str) -> Problem | None:
    """An id too long to stage (checked at read time, before staging, so every database agrees)."""
    if len(record_id) > LIMITS["id"]:
        return "field_too_long", f"{what} is {len(record_id)} characters (syncd allows {LIMITS['id']})"
    return None


def department_name_problem(name: str | None) -> Problem | None:
    if not name:
        return "missing_name", "department has no Name"
    if len(name) > LIMITS["dept_name"]:
        return "field_too_long", f"Name is {len(name)} characters (WORKBOX allows {LIMITS['dept_name']})"
    if CONTROL.search(name):
        return "invalid_characters", "Name contains control or invisible characters"
    return None


def name_parts_problem(emp: Payload) -> Problem | None:
    """Control or invisible characters in any part of an employee's name."""
    for part in NAME_PARTS:
        if CONTROL.search(str(emp.get(part) or "")):
            return "invalid_characters", f"{part} contains control or invisible characters"
    return None


def member_problem(body: Body) -> Problem | None:
    """What is wrong with a member body (with its ``_grade``/``_position`` names still in it)."""
    email = body.get("emailAddr") or ""
    if not email:
        return "missing_email", "no work e-mail address"
    if not EMAIL_RE.fullmatch(email):
        return "malformed_email", f"work e-mail {email[:120]!r} is not a valid ASCII address"
    if not body.get("name"):
        return "missing_name", "no name"
    for fld in ("name", "emailAddr", "telNo", "cphNo"):
        value = body.get(fld)
        if value is not None and len(value) > LIMITS[fld]:
            return "field_too_long", f"{fld} is {len(value)} characters (WORKBOX allows {LIMITS[fld]})"
    for fld in ("name", "telNo", "cphNo", "_grade", "_position"):
        value = body.get(fld)
        if value is not None and CONTROL.search(value):
            return "invalid_characters", f"{fld.lstrip('_')} contains control or invisible characters"
    for fld in ("_grade", "_position"):
        value = body.get(fld)
        if value is not None and len(value) > LIMITS["grade"]:
            return (
                "field_too_long",
                f"job {fld.lstrip('_')} is {len(value)} characters (WORKBOX allows {LIMITS['grade']})",
            )
    return None
