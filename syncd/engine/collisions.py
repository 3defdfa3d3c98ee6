"""Members WORKBOX refused because a member it holds *unmapped* has their e-mail address.

A create (or an e-mail change) answered E902 "e-mail taken" (``workbox.email_taken``) when syncd's
ledger has no member with that address means WORKBOX holds a member made by hand and never mapped to
an external key (docs/vendor-contract.md §3.3): retrying changes nothing, mapping does.  Such a member
is recorded (table ``workbox_collisions``), quarantined as ``unmapped_in_workbox`` with the commands
that map it, and held back by the merge (not created, not changed, never deleted) until it is tried
again: by the first cycle :data:`RETRY` after the collision, by ``syncd reconcile``, or at once when
HR gives it another address.  A retry that lands (the admin mapped it: "exists" → update, adopted)
clears it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace

import structlog

from syncd import metrics
from syncd.commands import command
from syncd.db import target
from syncd.db.models import utcnow
from syncd.db.records import Sessions
from syncd.engine.dispatch import ApplyResult
from syncd.engine.merge import UNMAPPED, Collided
from syncd.engine.plan import Body, Op
from syncd.engine.validate import Reject
from syncd.states import OpState

log = structlog.get_logger("syncd.engine.collisions")

#: a held-back member is tried again this long after its last collision
RETRY = dt.timedelta(hours=24)


def reason(row: target.CollisionRow) -> str:
    """The quarantine's reason: what WORKBOX said, and how an admin maps the member."""
    return (
        f"WORKBOX holds a member with the e-mail address {row.email!r} that is mapped to no external key "
        f"(it answered {row.first_seen:%Y-%m-%d %H:%M} UTC: {row.message}); map that member to the key "
        f"{row.key}: `{command('keys', 'export', '--kind', 'user')}` lists it, enter it in the console's "
        "mapping form (`syncd keys fill` fills the form) and upload it, then "
        f"`{command('reconcile', '--kind', 'user')}`; syncd tries again by itself after "
        f"{row.retry_at:%Y-%m-%d %H:%M} UTC"
    )


async def load(sessions: Sessions, *, retry_all: bool = False) -> dict[str, Collided]:
    """The recorded collisions, as the merge takes them (``retry_all``: none held back)."""
    rows = await target.collisions(sessions)
    now = utcnow()
    metrics.COLLISIONS.set(len(rows))
    return {
        key: Collided(row.email, reason(row), hold=not retry_all and row.retry_at > now)
        for key, row in rows.items()
    }


async def settle(
    sessions: Sessions,
    collided: Mapping[str, Collided],
    rejects: Sequence[Reject],
    applied: ApplyResult | None,
    ops: Sequence[Op],
    ledger: Mapping[tuple[str, str], Body],
) -> tuple[list[Reject], bool]:
    """After a cycle's apply (``applied``, of ``ops``): record the new collisions, clear those that
    landed or no longer apply; the quarantine's rejects updated to match, and whether they changed.

    A collision with an address the ledger gives another member is no unmapped member's: it is not
    held back (the next plan orders it after that member's change, or it is drift: README "Drift")."""
    quarantined = {r.record_id for r in rejects if r.reason_code == UNMAPPED}
    body_of = {op.key: op.body or {} for op in ops if op.kind == "user"}
    again = [f for f in (applied.collided if applied else []) if f.key in body_of]
    known_holder = _holders(ledger) if again else {}
    now = utcnow()
    new = []
    for f in again:
        email = str(body_of[f.key].get("emailAddr", "")).lower()
        holder = known_holder.get(email)
        if holder is not None and holder != f.key:
            # another member syncd pushed holds it: a failure of this run (the next plan orders the
            # two, or it is drift), not a collision with an unmapped member; counted and said so
            log.warning("collisions.known_member", key=f.key, holder=holder)
            if applied is not None:
                applied.collided.remove(f)
                applied.failed.append(replace(f, message=f"the e-mail address is held by member {holder}"))
                applied.outcomes[(f.kind, f.action, OpState.COLLIDED)] -= 1
                applied.outcomes[(f.kind, f.action, OpState.FAILED)] += 1
            continue
        new.append(target.CollisionRow(f.key, email, f.message, now, now + RETRY))
    again_keys = {r.key for r in new}
    retried = {key: c.email for key, c in collided.items() if not c.hold and key not in again_keys}
    landed = await target.members_with(sessions, retried)  # the admin mapped it: adopted
    clear = (set(collided) - quarantined) | landed  # gone from HR, or another address; or landed
    await target.record_collisions(sessions, new)
    await target.clear_collisions(sessions, clear)
    if not new and not (clear & quarantined):
        return list(rejects), False
    kept = [r for r in rejects if r.reason_code != UNMAPPED or r.record_id not in clear | again_keys]
    stored = await target.collisions(sessions)
    metrics.COLLISIONS.set(len(stored))
    kept += [
        Reject("workbox", "user", k, UNMAPPED, reason(stored[k]), body_of[k]) for k in sorted(again_keys)
    ]
    return kept, True


def _holders(ledger: Mapping[tuple[str, str], Body]) -> dict[str, str]:
    """lower-cased e-mail address → the member the ledger gives it."""
    return {
        str(body.get("emailAddr", "")).lower(): key for (kind, key), body in ledger.items() if kind == "user"
    }
