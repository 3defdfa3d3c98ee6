"""What syncd knows of WORKBOX beyond the ledger's bodies: when each entity was last asserted, and
the members WORKBOX refused because one it holds unmapped has their e-mail address.

The engine decides (:mod:`syncd.engine.reassert`, :mod:`syncd.engine.collisions`); these functions
only store and read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa

from syncd.db import records
from syncd.db.models import Collision, LedgerEntry, utcnow
from syncd.db.records import Sessions

# ---------------------------------------------------------------------------------- assertions


async def asserted_longest_ago(sessions: Sessions, limit: int) -> list[tuple[str, str]]:
    """(kind, key) of up to ``limit`` ledger entries, the one asserted longest ago first (never
    asserted since the column exists: first of all)."""
    if limit <= 0:
        return []
    never_first = sa.case((LedgerEntry.asserted_at.is_(None), 0), else_=1)
    stmt = (
        sa.select(LedgerEntry.kind, LedgerEntry.external_key)
        .order_by(never_first, LedgerEntry.asserted_at, LedgerEntry.kind, LedgerEntry.external_key)
        .limit(limit)
    )
    async with sessions() as db:
        return [(kind, key) for kind, key in (await db.execute(stmt)).all()]


async def oldest_assertion(sessions: Sessions) -> dt.datetime | None:
    """When the entity asserted longest ago was asserted (None: an empty ledger; an entry never
    asserted counts as asserted when it was pushed)."""
    async with sessions() as db:
        oldest = await db.scalar(
            sa.select(sa.func.min(sa.func.coalesce(LedgerEntry.asserted_at, LedgerEntry.pushed_at)))
        )
    if oldest is None:
        return None
    return oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)


async def assert_again_soon(sessions: Sessions, entities: Iterable[tuple[str, str]]) -> None:
    """Make ``entities`` the first re-asserted by the next cycle (their assertion is forgotten)."""
    await count_as_asserted(sessions, entities, None)


async def count_as_asserted(
    sessions: Sessions, entities: Iterable[tuple[str, str]], at: dt.datetime | None
) -> None:
    """Record ``entities`` as asserted ``at`` (None: never, so first in line)."""
    rows = [{"b_kind": kind, "b_key": key} for kind, key in entities]
    if not rows:
        return
    ledger = cast(sa.Table, LedgerEntry.__table__)
    async with sessions.begin() as db:
        await db.execute(
            sa.update(ledger)
            .where(ledger.c.kind == sa.bindparam("b_kind"), ledger.c.external_key == sa.bindparam("b_key"))
            .values(asserted_at=at),
            rows,
        )


# ------------------------------------------------------------------------------ mapping forms

#: the vendor fact (``workbox``, this + kind) ``syncd keys fill`` leaves: the rows its form keyed
MAPPED_FACT = "mapping-form-keyed:"
KINDS = ("job-grade", "job-position", "dept", "user")


async def remember_mapping(sessions: Sessions, kind: str, keyed: int) -> None:
    """How many rows of the kind's mapping form now carry a key (what a first sync should adopt)."""
    await records.remember_vendor_fact(sessions, "workbox", f"{MAPPED_FACT}{kind}", str(keyed))


async def mapping_keyed(sessions: Sessions) -> dict[str, int]:
    """Rows of each kind's mapping form ``syncd keys fill`` keyed (kinds never filled left out)."""
    out = {}
    for kind in KINDS:
        keyed = await records.vendor_fact(sessions, "workbox", f"{MAPPED_FACT}{kind}")
        if keyed and keyed.isdigit() and int(keyed):
            out[kind] = int(keyed)
    return out


# ---------------------------------------------------------------------------------- collisions


@dataclass(frozen=True)
class CollisionRow:
    key: str
    #: lower-cased
    email: str
    message: str
    first_seen: dt.datetime
    retry_at: dt.datetime


async def collisions(sessions: Sessions) -> dict[str, CollisionRow]:
    """member key → its collision."""
    async with sessions() as db:
        rows = (await db.execute(sa.select(Collision).where(Collision.kind == "user"))).scalars().all()
    return {
        r.external_key: CollisionRow(r.external_key, r.email, r.message, r.first_seen, r.retry_at)
        for r in rows
    }


async def record_collisions(sessions: Sessions, rows: Collection[CollisionRow]) -> None:
    """Add or refresh these collisions (a known one keeps when it was first seen, if its address is
    the same)."""
    now = utcnow()
    async with sessions.begin() as db:
        for r in rows:
            known = await db.get(Collision, ("user", r.key))
            if known is None:
                db.add(Collision(kind="user", external_key=r.key, email=r.email, message=r.message,
                                 first_seen=r.first_seen, last_seen=now, retry_at=r.retry_at))  # fmt: skip
                continue
            if known.email != r.email:
                known.first_seen = r.first_seen
            known.email, known.message, known.last_seen, known.retry_at = r.email, r.message, now, r.retry_at


async def members_with(sessions: Sessions, emails: Mapping[str, str]) -> set[str]:
    """Of ``emails`` (member key → lower-cased address), the keys the ledger holds with that address."""
    if not emails:
        return set()
    stmt = sa.select(LedgerEntry.external_key, LedgerEntry.body).where(
        LedgerEntry.kind == "user", LedgerEntry.external_key.in_(sorted(emails))
    )
    async with sessions() as db:
        rows = (await db.execute(stmt)).all()
    return {key for key, body in rows if str((body or {}).get("emailAddr", "")).lower() == emails[key]}


async def clear_collisions(sessions: Sessions, keys: Collection[str]) -> None:
    if not keys:
        return
    async with sessions.begin() as db:
        await db.execute(
            sa.delete(Collision).where(Collision.kind == "user", Collision.external_key.in_(sorted(keys)))
        )
