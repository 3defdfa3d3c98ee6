"""When a plan must wait for a person's approval.  Pure.

Only member deletions count today: a plan is held when it deletes more than ``sync.max_deletes``
members, or more than ``sync.max_delete_ratio`` of the members the ledger holds.
"""

from __future__ import annotations

from syncd.engine.plan import Op
from syncd.states import Action, Kind


def hold_reason(
    ops: list[Op], ledger_members: int, *, max_deletes: int, max_delete_ratio: float
) -> str | None:
    """Why this plan must wait for approval, or None.  Only member deletions count."""
    deletes = sum(1 for op in ops if op.kind == Kind.USER and op.action == Action.DELETE)
    if deletes == 0:
        return None
    ratio = deletes / ledger_members if ledger_members else 1.0
    if deletes > max_deletes:
        return f"plan deletes {deletes} members, more than sync.max_deletes = {max_deletes}"
    if ratio > max_delete_ratio:
        return (
            f"plan deletes {deletes} of {ledger_members} members ({ratio:.0%}), more than "
            f"sync.max_delete_ratio = {max_delete_ratio:.0%}"
        )
    return None
