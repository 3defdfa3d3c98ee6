"""The states syncd records, as enums: what a run ended as, what became of a plan and of each operation.

They are ``StrEnum``s, so a member *is* its string: it is stored in the database, shown to operators
and compared with plain strings as it is.  Exit codes are derived from :class:`RunResult`; messages
are built from states (see :func:`syncd.engine.dispatch.blocked_reason`), never stored in them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Process exit codes (README "Exit codes")."""

    OK = 0
    FAILED = 1
    USAGE = 2
    HELD = 3


class Kind(StrEnum):
    """What WORKBOX holds, in the order a plan creates them (grades and positions before members)."""

    GRADE = "job-grade"
    POSITION = "job-position"
    DEPT = "dept"
    USER = "user"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    #: the ledger's body sent again (PUT; "unknown key" → POST): drift repair, :mod:`syncd.engine.reassert`
    REASSERT = "reassert"


class OpState(StrEnum):
    """An operation in the journal: ``pending`` until its outcome is settled."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: not sent: recovery found that the current sources no longer want it
    SUPERSEDED = "superseded"
    #: refused: a member WORKBOX holds unmapped has the e-mail address (quarantined
    #: ``unmapped_in_workbox``, :mod:`syncd.engine.collisions`)
    COLLIDED = "collided"

    @property
    def settled(self) -> bool:
        return self is not OpState.PENDING


class RunResult(StrEnum):
    """How a run ended (``running`` while it runs)."""

    RUNNING = "running"
    SUCCESS = "success"
    DRY_RUN = "dry-run"
    HELD = "held"
    STALE = "stale"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def exit_code(self) -> ExitCode:
        return _RUN_EXIT[self]

    @property
    def succeeded(self) -> bool:
        """A run whose sources were read and whose plan was carried out (or only shown)."""
        return self in (RunResult.SUCCESS, RunResult.DRY_RUN)


_RUN_EXIT = {
    RunResult.RUNNING: ExitCode.FAILED,
    RunResult.SUCCESS: ExitCode.OK,
    RunResult.DRY_RUN: ExitCode.OK,
    RunResult.HELD: ExitCode.HELD,
    RunResult.STALE: ExitCode.FAILED,
    RunResult.FAILED: ExitCode.FAILED,
    RunResult.INTERRUPTED: ExitCode.FAILED,
}


class PlanStatus(StrEnum):
    """A stored plan: made by a dry run, applied at once, or held until someone approves it."""

    PLANNED = "planned"
    APPLIED = "applied"
    HELD = "held"
    #: approved while another process held the leader lease: that process applies it next cycle
    QUEUED = "queued"
    APPROVED = "approved"
    REFUSED = "refused"
    #: a newer plan was made before anyone approved this one
    SUPERSEDED = "superseded"
    #: older than ``sync.plan_ttl`` when someone tried to approve it
    EXPIRED = "expired"

    @property
    def approvable(self) -> bool:
        return self in (PlanStatus.HELD, PlanStatus.QUEUED)
