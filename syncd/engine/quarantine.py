"""The quarantine: every rejected source record, kept for inspection until its source fixes it."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from syncd import metrics
from syncd.db import records
from syncd.engine.plan import canonical
from syncd.engine.validate import LIMITS, Reject

#: reject reasons found while reading, before merge: a stale source keeps its last read's ones
#: (``field_too_long`` only for an id too long to stage: the merge finds the other ones again)
STAGE_LEVEL_CODES = ("unparseable", "duplicate_id", "field_too_long")
SOURCES = ("infinityhr", "whosoff", "workbox")  # workbox: unmapped_in_workbox (engine.collisions)
#: the quarantine's record_key and record_id columns
KEY_LEN, ID_LEN = 64, 200


def _digest(text: str) -> str:
    return "h-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def rows_of(rejects: Sequence[Reject]) -> list[records.QuarantineRow]:
    """One row per rejected record (the first reject of a record wins); a record without an id is
    identified by a hash of its payload, one whose id is too long for the key by a hash of the id."""
    wanted: dict[tuple[str, str, str], records.QuarantineRow] = {}
    for r in rejects:
        key = r.record_id or _digest(canonical(dict(r.payload)))
        key = key if len(key) <= KEY_LEN else _digest(key)
        rid = r.record_id[:ID_LEN] if r.record_id is not None else None
        row = records.QuarantineRow(r.source, r.kind, key, rid, r.reason_code, r.reason, r.payload)
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
        and (r.reason_code != "field_too_long" or len(r.record_id or "") > LIMITS["id"])
    ]
