"""What every vendor module shares: the record that could not be parsed, and splitting parse results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """One source record that could not become its model (wrong type, missing id).

    ``payload`` holds the record's documented fields only, never SSN, PersonalEmail or a secret.
    The engine quarantines it; a malformed *response* raises :class:`~syncd.errors.ProtocolError`.
    """

    source: str
    record_id: str | None
    reason: str
    payload: dict[str, Any] = field(default_factory=dict)


def split_records(items: list[T | InvalidRecord]) -> tuple[list[T], list[InvalidRecord]]:
    good: list[T] = []
    bad: list[InvalidRecord] = []
    for item in items:
        if isinstance(item, InvalidRecord):
            bad.append(item)
        else:
            good.append(item)
    return good, bad
