"""WhosOff wire models: the JSON user and department objects become typed records here.

Models are strict about structure (an id must be present and an integer, a date must be a date) and
lenient about content (text fields are ``str | None``; the engine validates content).  Only the
documented keys are carried into an :class:`InvalidRecord`, so nothing unexpected (a secret, a
password) travels on.  The key names are [designed] (docs/vendor-contract.md §1.2) and live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from syncd.vendors.common import InvalidRecord

VENDOR = "whosoff"


@dataclass(frozen=True, slots=True)
class WhosOffUser:
    user_id: int
    staff_code: str | None
    title: str | None
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    #: from ``email_contact`` or ``email_address`` (``whosoff.email_field``)
    email: str | None
    department_id: int | None
    user_type_id: int | None
    status_id: int | None
    employment_started_date: date | None
    employment_ended_date: date | None
    work_telephone: str | None
    mobile_telephone: str | None
    active_directory_username: str | None


@dataclass(frozen=True, slots=True)
class WhosOffDepartment:
    department_id: int
    name: str | None
    min_user: int | None


_USER_STR = (
    "staff_code", "title", "first_name", "middle_name", "last_name",
    "work_telephone", "mobile_telephone", "active_directory_username",
)  # fmt: skip
#: the keys a user's e-mail may come under (docs/vendor-contract.md §1.3): create field, auth response
EMAIL_FIELDS = ("email_contact", "email_address")
_USER_INT = ("department_id", "user_type_id", "status_id")
_USER_DATE = ("employment_started_date", "employment_ended_date")
_USER_KEYS = ("user_id", *_USER_STR, *EMAIL_FIELDS, *_USER_INT, *_USER_DATE)


class _Invalid(Exception):
    pass


def _opt_str(raw: dict[str, Any], key: str) -> str | None:
    v = raw.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise _Invalid(f"{key} is not a string")
    return str(v) if v != "" else None


def _opt_int(raw: dict[str, Any], key: str) -> int | None:
    v = raw.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise _Invalid(f"{key} is not an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    raise _Invalid(f"{key} is not an integer")


def _opt_date(raw: dict[str, Any], key: str) -> date | None:
    v = raw.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise _Invalid(f"{key} is not a date")
    try:
        return date.fromisoformat(v[:10])
    except ValueError:
        raise _Invalid(f"{key} is not a YYYY-MM-DD date") from None


def _record_id(raw: dict[str, Any], key: str) -> str | None:
    v = raw.get(key)
    return None if v is None else str(v)[:64]


def _safe_payload(raw: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Only the documented fields (so nothing unexpected — a secret, a password — is carried on)."""
    return {k: raw[k] for k in keys if k in raw and isinstance(raw[k], str | int | float | None)}


def _email(raw: dict[str, Any], email_field: str) -> str | None:
    """The user's e-mail from the configured key, or (``auto``) from the first key that has one."""
    if email_field != "auto":
        return _opt_str(raw, email_field)
    for key in EMAIL_FIELDS:
        value = _opt_str(raw, key)
        if value is not None:
            return value
    return None


def parse_user(raw: object, email_field: str = "auto") -> WhosOffUser | InvalidRecord:
    if not isinstance(raw, dict):
        return InvalidRecord(VENDOR, None, "user is not a JSON object", {})
    try:
        user_id = _opt_int(raw, "user_id")
        if user_id is None:
            raise _Invalid("user_id is missing")
        return WhosOffUser(
            user_id=user_id,
            staff_code=_opt_str(raw, "staff_code"),
            title=_opt_str(raw, "title"),
            first_name=_opt_str(raw, "first_name"),
            middle_name=_opt_str(raw, "middle_name"),
            last_name=_opt_str(raw, "last_name"),
            email=_email(raw, email_field),
            department_id=_opt_int(raw, "department_id"),
            user_type_id=_opt_int(raw, "user_type_id"),
            status_id=_opt_int(raw, "status_id"),
            employment_started_date=_opt_date(raw, "employment_started_date"),
            employment_ended_date=_opt_date(raw, "employment_ended_date"),
            work_telephone=_opt_str(raw, "work_telephone"),
            mobile_telephone=_opt_str(raw, "mobile_telephone"),
            active_directory_username=_opt_str(raw, "active_directory_username"),
        )
    except _Invalid as exc:
        return InvalidRecord(VENDOR, _record_id(raw, "user_id"), str(exc), _safe_payload(raw, _USER_KEYS))


def parse_department(raw: object) -> WhosOffDepartment | InvalidRecord:
    if not isinstance(raw, dict):
        return InvalidRecord(VENDOR, None, "department is not a JSON object", {})
    try:
        dept_id = _opt_int(raw, "department_id")
        if dept_id is None:
            raise _Invalid("department_id is missing")
        return WhosOffDepartment(dept_id, _opt_str(raw, "name"), _opt_int(raw, "min_user"))
    except _Invalid as exc:
        keys = ("department_id", "name", "min_user")
        return InvalidRecord(VENDOR, _record_id(raw, "department_id"), str(exc), _safe_payload(raw, keys))
