"""The quarantine: every rejected source record, kept for inspection until its source fixes it."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from syncd import metrics
from syncd.db import records
from syncd.engine.plan import canonical
from syncd.engine.validate import Reject

#: reject reasons found while reading, before merge: a stale source keeps its last read's ones
STAGE_LEVEL_CODES = ("unparseable", "duplicate_id")
SOURCES = ("infinityhr", "whosoff")


def rows_of(rejects: Sequence[Reject]) -> list[records.QuarantineRow]:
    """One row per rejected record (the first reject of a record wins); a record without an id is
    identified by a hash of its payload."""
    wanted: dict[tuple[str, str, str], records.QuarantineRow] = {}
    for r in rejects:
        key = r.record_id or "h-" + hashlib.sha256(canonical(dict(r.payload)).encode()).hexdigest()[:40]
        row = records.QuarantineRow(
            r.source, r.kind, key[:64], r.record_id, r.reason_code, r.reason, r.payload
        )
        wanted.setdefault((r.source, r.kind, row.key), row)
    return list(wanted.values())


async def write(sessions: records.Sessions, rejects: Sequence[Reject], run_id: int, *, store: bool) -> int:
    """Replace the quarantine with this run's rejects (unless ``store`` is false: a dry run only
    counts, the quarantine belongs to the leader); how many records are in it."""
    rows = rows_of(rejects)
    if not store:
        return len(rows)
    await records.replace_quarantine(sessions, rows, run_id)
    for source in SOURCES:
        metrics.QUARANTINE_SIZE.labels(source).set(sum(1 for r in rows if r.source == source))
    return len(rows)


async def stage_rejects(sessions: records.Sessions, stale: Collection[tuple[str, str]]) -> list[Reject]:
    """The read-time rejects of the ``stale`` sources' last good read (their keys stay frozen)."""
    if not stale:
        return []
    return [
        Reject(r.source, r.kind, r.record_id, r.reason_code, r.reason, r.payload)
        for r in await records.quarantined(sessions, STAGE_LEVEL_CODES)
        if (r.source, r.kind) in stale
    ]
