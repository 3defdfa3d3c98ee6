"""What a cycle reads of each source: everything, only InfinityHR's changed employees, or nothing
(the last trusted snapshot is used as it is), and how a read of changes becomes a whole snapshot.

``sync.full_every`` sets the cadence of full reads (InfinityHR's employees, and WhosOff unless
``whosoff.read_every`` says otherwise).  Between them a cycle asks InfinityHR only for the employees
changed since the last trusted read began (``[infinityhr.date_range]``, with its overlap) and lays
them over the last trusted snapshot; InfinityHR's departments are read every cycle when they come
from their own method (one small call), and with the full reads when they are built from the
employee records.  Absence from such a read means nothing: a
person HR no longer lists at all is deleted only after a full read.  Terminations arrive as changes
and are applied like any other change.  A source whose last read was not trusted is read in full
every cycle until it is, and everything is after a run that did not finish; a read of changes that
fails leaves the last trusted snapshot in force; a record it cannot use keeps its last good version
(quarantined and frozen meanwhile), so it is never deleted for being absent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd.config import Settings
from syncd.config.section import parse_interval
from syncd.db import records
from syncd.db.models import SourceState, utcnow
from syncd.engine.pull import Payload, Pulled, SourceKind
from syncd.states import RunResult

#: every source kind a cycle may read
SOURCE_KINDS: tuple[SourceKind, ...] = (
    ("infinityhr", "department"),
    ("infinityhr", "employee"),
    ("whosoff", "department"),
    ("whosoff", "user"),
)
EMPLOYEES: SourceKind = ("infinityhr", "employee")


class ReadMode(StrEnum):
    FULL = "full"
    #: InfinityHR's employees changed in :attr:`Reads.changed`
    CHANGES = "changes"
    #: not read: the last trusted snapshot
    REUSE = "reuse"


@dataclass(frozen=True)
class Reads:
    """This cycle's read of each source kind, and why."""

    modes: Mapping[SourceKind, ReadMode]
    #: (begin, end) of the read of changes
    changed: tuple[dt.datetime, dt.datetime] | None = None
    why: str = "full read"

    def mode(self, key: SourceKind) -> ReadMode:
        return self.modes.get(key, ReadMode.FULL)

    @property
    def labels(self) -> dict[str, str]:
        """``source:kind`` → the mode, for the run record and the log."""
        return {f"{s}:{k}": str(self.mode((s, k))) for s, k in SOURCE_KINDS}


ALL_FULL = Reads({key: ReadMode.FULL for key in SOURCE_KINDS})


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


#: how a run before may have ended between staging a read and recording its rejects in the
#: quarantine, which the reads of changes rely on to keep those records frozen
_UNFINISHED = (RunResult.RUNNING, RunResult.INTERRUPTED, RunResult.FAILED)


def decide(
    states: Mapping[SourceKind, SourceState],
    settings: Settings,
    now: dt.datetime,
    *,
    full: bool = False,
    previous: RunResult | None = None,
) -> Reads:
    """This cycle's reads, from each source kind's last reads (``full``: everything, whatever the
    cadence says: an approval, a reconcile; ``previous``: how the run before ended, a full read after
    one that did not finish)."""
    cadence = settings.sync.seconds("full_every")
    employees = states.get(EMPLOYEES)
    last_full = _aware(employees.last_full_at) if employees is not None else None
    read_from = _aware(employees.read_from) if employees is not None else None
    if full or not cadence:
        return _labelled(ALL_FULL, "full read" if full else "full read (sync.full_every = 0)")
    if previous in _UNFINISHED:
        return _labelled(ALL_FULL, f"full read (the run before ended {previous})")
    if last_full is None or read_from is None:
        return _labelled(ALL_FULL, "full read (no trusted full read yet)")
    if (now - last_full).total_seconds() >= cadence:
        return _labelled(ALL_FULL, f"full read (the last began {_ago(now - last_full)} ago)")
    overlap = dt.timedelta(seconds=settings.infinityhr.date_range.overlap_seconds())
    modes = {key: ReadMode.REUSE for key in SOURCE_KINDS}
    modes[EMPLOYEES] = ReadMode.CHANGES
    if settings.infinityhr.departments_from == "method":  # one small call: the tree stays current
        modes[("infinityhr", "department")] = ReadMode.FULL
    wo_every = parse_interval(settings.whosoff.read_every) if settings.whosoff.read_every else None
    for key in SOURCE_KINDS:
        state = states.get(key)
        if key == EMPLOYEES:
            continue
        if state is None or state.last_good_run_id is None or state.last_status != "ok":
            modes[key] = ReadMode.FULL  # its last read was not trusted: read it again now
        elif key[0] == "whosoff" and wo_every is not None:
            good = _aware(state.read_from or state.last_good_at)
            if good is None or (now - good).total_seconds() >= wo_every:
                modes[key] = ReadMode.FULL
    since = read_from.isoformat(timespec="seconds")
    why = f"changes since {since} (the last full read began {_ago(now - last_full)} ago)"
    return _labelled(Reads(modes, (read_from - overlap, now + overlap)), why)


def _labelled(reads: Reads, why: str) -> Reads:
    return dataclasses.replace(reads, why=why)


def _ago(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


async def plan_reads(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, run_id: int, *, full: bool = False
) -> Reads:
    async with sessions() as db:
        states = {key: await db.get(SourceState, key) for key in SOURCE_KINDS}
    known = {k: v for k, v in states.items() if v is not None}
    previous = await records.previous_result(sessions, run_id)
    return decide(known, settings, utcnow(), full=full, previous=previous)


def overlay(snapshot: dict[str, Payload], changes: Pulled) -> dict[str, Payload]:
    """The last trusted snapshot with a read of changes laid over it: changed and new records replace
    theirs; every other record stays as it was, a record the read could not use too (its last good
    version: the id is quarantined and frozen meanwhile, and if that were ever lost the member would be
    planned from the last good version, never deleted for being absent)."""
    snapshot.update(changes.records)
    return snapshot
