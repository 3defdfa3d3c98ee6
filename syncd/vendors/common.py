"""What every vendor module shares: the record that could not be parsed, splitting parse results, and
converting a list of records without holding two whole copies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


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


def consume(items: list[T], convert: Callable[[T], R]) -> Iterator[R]:
    """``convert`` of each of ``items`` in order, each item dropped from the list as it is converted:
    a read of 60,000 records then never holds two whole representations of them at once."""
    items.reverse()
    while items:
        yield convert(items.pop())
