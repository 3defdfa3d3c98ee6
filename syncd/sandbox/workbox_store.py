"""The sandbox's WORKBOX directory, with the body and referential rules of docs/vendor-contract.md §3.2.

``WorkboxState.dept``, ``.user``, ``.job_grade`` and ``.job_position`` map externalKey → the last body
accepted for it; ``state["job-grade"]`` (the URL kind name) reaches the same dicts. Indexes keep
every rule O(1)/O(depth) so a 100k-member push stays linear.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

KINDS = ("dept", "user", "job-grade", "job-position")
KEY_RE = re.compile(r"[A-Za-z0-9._-]{1,36}")
TOP = "#"

# field -> (type, max length or None, required)
FieldSpec = tuple[type, int | None, bool]
SCHEMAS: dict[str, dict[str, FieldSpec]] = {
    "dept": {
        "name": (str, 100, True),
        "i18nNames": (dict, 100, False),
        "sortOrd": (str, 1, True),  # String(1) on the department page (contract §3.2, second reading)
        "uprDeptExternalKey": (str, 50, True),
    },
    "user": {
        "name": (str, 100, True),
        "i18nNames": (dict, 100, False),
        "deptExternalKey": (str, 36, False),
        "gradeExternalKey": (str, 100, False),
        "positionExternalKey": (str, 100, False),
        "emailAddr": (str, 100, True),
        "telNo": (str, 30, False),
        "cphNo": (str, 100, False),
        "localeTypeCd": (str, 20, False),
        "tmznTypeCd": (str, 50, False),
    },
    "job-grade": {"name": (str, 100, True), "i18nNames": (dict, 100, False), "sortOrd": (int, None, True)},
    "job-position": {"name": (str, 100, True), "i18nNames": (dict, 100, False), "sortOrd": (int, None, True)},
}


class WorkboxError(Exception):
    """A WORKBOX business error: ``{"resultCode": code, "resultMessage": message}`` with HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _e902(message: str) -> WorkboxError:
    return WorkboxError("E902", message)


def validate_body(kind: str, body: object) -> dict[str, Any]:
    """Field presence, types and lengths (E902); returns the body without null optional fields."""
    if not isinstance(body, dict):
        raise _e902("request body must be a JSON object")
    schema = SCHEMAS[kind]
    unknown = sorted(set(body) - set(schema))
    if unknown:
        raise _e902(f"unknown field(s): {', '.join(unknown)}")
    clean: dict[str, Any] = {}
    for name, (typ, limit, required) in schema.items():
        value = body.get(name)
        if value is None or (typ is str and value == ""):
            if required:
                raise _e902(f"{name} is required")
            continue
        if typ is int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _e902(f"{name} must be an integer")
        elif typ is dict:
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise _e902(f"{name} must be an object of locale -> name strings")
            if limit is not None and any(len(v) > limit for v in value.values()):
                raise _e902(f"{name} values must be at most {limit} characters")
        elif not isinstance(value, str):
            raise _e902(f"{name} must be a string")
        elif limit is not None and len(value) > limit:
            raise _e902(f"{name} must be at most {limit} characters")
        clean[name] = value
    if kind == "user" and "@" not in clean["emailAddr"]:
        raise _e902("emailAddr must be an e-mail address")
    return clean


@dataclass
class WorkboxState:
    dept: dict[str, dict[str, Any]] = field(default_factory=dict)
    user: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_grade: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_position: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)  # lower-cased emailAddr -> user key
    members: Counter[str] = field(default_factory=Counter)  # dept key -> users in it
    children: Counter[str] = field(default_factory=Counter)  # dept key -> child depts
    grade_refs: Counter[str] = field(default_factory=Counter)
    position_refs: Counter[str] = field(default_factory=Counter)

    def __getitem__(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            "dept": self.dept,
            "user": self.user,
            "job-grade": self.job_grade,
            "job-position": self.job_position,
        }[kind]

    def to_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {kind: self[kind] for kind in KINDS}

    def clear(self) -> None:
        for kind in KINDS:
            self[kind].clear()
        for index in (self.emails, self.members, self.children, self.grade_refs, self.position_refs):
            index.clear()

    # ---- writes ---------------------------------------------------------------------------------
    def apply(self, method: str, kind: str, key: str, body: object) -> int:
        """Apply one write; returns the HTTP status (201/200) or raises WorkboxError."""
        store = self[kind]
        if method == "DELETE":
            if key not in store:
                raise WorkboxError("E904", f"externalKey {key} not found ({kind})")
            self._check_delete(kind, key)
            self._unindex(kind, key, store.pop(key))
            return 200
        clean = validate_body(kind, body)
        if method == "POST" and key in store:
            raise WorkboxError("E904", f"externalKey {key} already exists ({kind})")
        if method == "PUT" and key not in store:
            raise WorkboxError("E904", f"externalKey {key} not found ({kind})")
        self._check_refs(kind, key, clean)
        old = store.get(key)
        if old is not None:
            self._unindex(kind, key, old)
        store[key] = clean
        self._index(kind, key, clean)
        return 201 if method == "POST" else 200

    def _check_refs(self, kind: str, key: str, body: dict[str, Any]) -> None:
        if kind == "dept":
            parent = body["uprDeptExternalKey"]
            if parent == TOP:
                return
            if parent not in self.dept:
                raise _e902(f"uprDeptExternalKey {parent} does not exist")
            cursor: str = parent
            for _ in range(len(self.dept) + 1):
                if cursor == key:
                    raise _e902("uprDeptExternalKey would make the department its own ancestor")
                cursor = self.dept[cursor]["uprDeptExternalKey"]
                if cursor == TOP:
                    return
        elif kind == "user":
            for name, store in (
                ("deptExternalKey", self.dept),
                ("gradeExternalKey", self.job_grade),
                ("positionExternalKey", self.job_position),
            ):
                ref = body.get(name)
                if ref is not None and ref not in store:
                    raise _e902(f"{name} {ref} does not exist")
            owner = self.emails.get(body["emailAddr"].lower())
            if owner is not None and owner != key:
                raise _e902(f"emailAddr is already used by another member ({owner})")

    def _check_delete(self, kind: str, key: str) -> None:
        if kind == "dept":
            if self.members[key]:
                raise _e902(f"department {key} still has {self.members[key]} member(s)")
            if self.children[key]:
                raise _e902(f"department {key} still has {self.children[key]} child department(s)")
        elif kind == "job-grade" and self.grade_refs[key]:
            raise _e902(f"job grade {key} is still referenced by {self.grade_refs[key]} member(s)")
        elif kind == "job-position" and self.position_refs[key]:
            raise _e902(f"job position {key} is still referenced by {self.position_refs[key]} member(s)")

    def _index(self, kind: str, key: str, body: dict[str, Any], delta: int = 1) -> None:
        if kind == "dept":
            parent = body["uprDeptExternalKey"]
            if parent != TOP:
                self.children[parent] += delta
        elif kind == "user":
            if delta > 0:
                self.emails[body["emailAddr"].lower()] = key
            else:
                self.emails.pop(body["emailAddr"].lower(), None)
            for name, counter in (
                ("deptExternalKey", self.members),
                ("gradeExternalKey", self.grade_refs),
                ("positionExternalKey", self.position_refs),
            ):
                ref = body.get(name)
                if ref is not None:
                    counter[ref] += delta

    def _unindex(self, kind: str, key: str, body: dict[str, Any]) -> None:
        self._index(kind, key, body, delta=-1)
