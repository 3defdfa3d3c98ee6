"""Whether one paged read can be trusted (docs/vendor-contract.md §2.2, [designed]).

A paged read is a set of separate requests; the service may change between them.  A purge shifts the
later pages (a record is never seen), an insert the service does not count repeats one, and a page
answered short loses some.  Any of these would read as deletions, so a read is consistent only when

* TotalCount is the same on every page,
* no id appears on two different pages (a repeat *within* one page is a data problem: the engine
  quarantines it as ``duplicate_id``), and
* the records read (valid and invalid) add up to TotalCount.
"""

from __future__ import annotations

from collections.abc import Iterable


class PageAudit:
    """Collects the pages of one read; :meth:`problem` says which checks failed."""

    def __init__(self, id_name: str) -> None:
        self.id_name = id_name
        self.total: int | None = None
        self.last_page = 0
        self.read = 0
        self.first_page: dict[str, int] = {}
        self.changes: list[str] = []
        self.repeats: list[str] = []

    def add(self, page: int, total: int, ids: Iterable[str | None], count: int) -> None:
        """Page ``page`` answered ``total`` as TotalCount with ``count`` records whose ids are ``ids``."""
        if self.total is not None and total != self.total:
            self.changes.append(
                f"TotalCount changed from {self.total} to {total} between pages {self.last_page} and {page}"
            )
        self.total, self.last_page = total, page
        self.read += count
        for rid in ids:
            if rid is None:
                continue
            first = self.first_page.setdefault(rid, page)
            if first != page:
                self.repeats.append(f"{self.id_name} {rid} on pages {first} and {page}")

    def problem(self) -> str | None:
        """Every failed check, or None when the read is consistent."""
        problems = [_first(self.changes, "change"), _first(self.repeats, "repeat")]
        if self.total is not None and self.read != self.total:
            problems.append(f"read {self.read} of TotalCount {self.total}")
        text = "; ".join(p for p in problems if p)
        return text or None


def _first(found: list[str], what: str) -> str:
    if len(found) > 1:
        return f"{found[0]} (and {len(found) - 1} more {what}s)"
    return found[0] if found else ""
