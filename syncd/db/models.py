"""The staging database: source snapshots, quarantine, target ledger, runs, plans, operation journal.

WORKBOX has no read API, so :class:`LedgerEntry` is the only record of what WORKBOX holds; it changes
only in the transaction that settles the :class:`Operation` that caused the change.

Values that must never be stored (SSN, personal email, secrets, tokens) have no column, and the
normalised ``payload`` of a source record is built from models that do not carry them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON(),
        list[Any]: sa.JSON(),
    }


# ------------------------------------------------------------------------------- source snapshots


class _SourceRecord:
    """One record of a source's last trusted snapshot."""

    #: the source's stable id (EmployeeID, DepartmentCode, user_id, department_id)
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: normalised record (no SSN, no personal email)
    payload: Mapped[dict[str, Any]]
    #: SHA-256 of the canonical JSON of ``payload``
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    first_seen: Mapped[dt.datetime]
    #: when a read last inserted or changed this record (unchanged records are not rewritten each run:
    #: every row is in the last trusted snapshot, confirmed at ``source_state.last_good_at``)
    last_seen: Mapped[dt.datetime]
    #: run that last wrote this row
    last_run_id: Mapped[int | None]


class InfinityHREmployee(_SourceRecord, Base):
    __tablename__ = "src_infinityhr_employee"


class InfinityHRDepartment(_SourceRecord, Base):
    __tablename__ = "src_infinityhr_department"


class WhosOffUser(_SourceRecord, Base):
    __tablename__ = "src_whosoff_user"


class WhosOffDepartment(_SourceRecord, Base):
    __tablename__ = "src_whosoff_department"


#: (source, kind) → staging table
SOURCE_TABLES: dict[tuple[str, str], sa.Table] = {
    ("infinityhr", "employee"): cast(sa.Table, InfinityHREmployee.__table__),
    ("infinityhr", "department"): cast(sa.Table, InfinityHRDepartment.__table__),
    ("whosoff", "user"): cast(sa.Table, WhosOffUser.__table__),
    ("whosoff", "department"): cast(sa.Table, WhosOffDepartment.__table__),
}


class SourceState(Base):
    """Per source and record kind: the last trusted snapshot and the last attempt."""

    __tablename__ = "source_state"
    source: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    last_good_run_id: Mapped[int | None]
    last_good_at: Mapped[dt.datetime | None]
    last_good_count: Mapped[int | None]
    last_attempt_at: Mapped[dt.datetime | None]
    #: ``ok`` | ``stale``
    last_status: Mapped[str | None] = mapped_column(sa.String(16))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: when the last trusted full read began (``sync.full_every`` counts from it)
    last_full_at: Mapped[dt.datetime | None]
    #: when the last trusted read, full or incremental, began: the next incremental read starts there
    read_from: Mapped[dt.datetime | None]


class QuarantineEntry(Base):
    """A source record that failed validation, kept for inspection until its source fixes it."""

    __tablename__ = "quarantine"
    __table_args__ = (sa.UniqueConstraint("source", "kind", "record_key"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(32))
    #: the record's id, or a hash of its payload when it has none
    record_key: Mapped[str] = mapped_column(sa.String(64))
    record_id: Mapped[str | None] = mapped_column(sa.String(200))
    #: machine-readable reason (``missing_email``, ``duplicate_email``, ``department_cycle``, …)
    reason_code: Mapped[str] = mapped_column(sa.String(48))
    reason: Mapped[str] = mapped_column(sa.Text)
    payload: Mapped[dict[str, Any]]
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    last_run_id: Mapped[int | None]


# --------------------------------------------------------------------------------------- target


class LedgerEntry(Base):
    """What WORKBOX holds, as far as syncd has pushed it."""

    __tablename__ = "ledger"
    #: ``dept`` | ``user`` | ``job-grade`` | ``job-position``
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    external_key: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    body: Mapped[dict[str, Any]]
    body_hash: Mapped[str] = mapped_column(sa.String(64))
    pushed_at: Mapped[dt.datetime]
    #: the journal operation that last changed this entry
    operation_id: Mapped[int | None]
    #: when WORKBOX was last told this body (pushed, or re-asserted: :mod:`syncd.engine.reassert`);
    #: None: not since the ledger had this column (re-asserted first)
    asserted_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class Collision(Base):
    """A create (or e-mail change) WORKBOX refused because a member it holds *unmapped* (created by hand,
    no external key) already has the e-mail address: held back, and kept in the quarantine as
    ``unmapped_in_workbox``, until it is retried (:mod:`syncd.engine.collisions`)."""

    __tablename__ = "workbox_collisions"
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    external_key: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    #: the address that collided, lower-cased (a new address in HR is tried at once)
    email: Mapped[str] = mapped_column(sa.String(100))
    #: WORKBOX's answer, as it gave it
    message: Mapped[str] = mapped_column(sa.Text)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    #: tried again by the first cycle after this (or by ``syncd reconcile``)
    retry_at: Mapped[dt.datetime]


# ---------------------------------------------------------------------------------- runs & plans


class SyncRun(Base):
    __tablename__ = "sync_runs"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    #: ``schedule`` | ``once`` | ``approve`` | ``plan``
    trigger: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    finished_at: Mapped[dt.datetime | None]
    #: :class:`syncd.states.RunResult`
    result: Mapped[str] = mapped_column(sa.String(16), index=True)
    #: counts per kind/action/result, source sizes, quarantine size
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stale_sources: Mapped[list[Any]] = mapped_column(default=list)
    quarantine_size: Mapped[int] = mapped_column(default=0)
    plan_id: Mapped[str | None] = mapped_column(sa.String(36))
    error: Mapped[str | None] = mapped_column(sa.Text)
    #: which process ran it (host:pid)
    holder: Mapped[str | None] = mapped_column(sa.String(200))


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    run_id: Mapped[int | None]
    created_at: Mapped[dt.datetime]
    #: SHA-256 over the ordered operations
    plan_hash: Mapped[str] = mapped_column(sa.String(64))
    #: SHA-256 over the ledger the plan was made from (approval refuses if it changed)
    ledger_hash: Mapped[str] = mapped_column(sa.String(64))
    #: :class:`syncd.states.PlanStatus`
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    hold_reason: Mapped[str | None] = mapped_column(sa.Text)
    summary: Mapped[dict[str, Any]]
    operations: Mapped[list[Any]]
    #: who approved a held plan (``syncd approve --by``, else the login name), and when
    approved_by: Mapped[str | None] = mapped_column(sa.String(200))
    approved_at: Mapped[dt.datetime | None]
    #: the newer plan that made this held plan obsolete
    superseded_by: Mapped[str | None] = mapped_column(sa.String(36))


class Operation(Base):
    """The journal: every WORKBOX operation is written here before it is sent and settled after."""

    __tablename__ = "operations"
    __table_args__ = (
        sa.Index("ix_operations_state_id", "state", "id"),
        sa.Index("ix_operations_kind_external_key", "kind", "external_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(index=True)
    plan_id: Mapped[str | None] = mapped_column(sa.String(36))
    #: position in the plan (dependencies refer to it)
    seq: Mapped[int]
    level: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(sa.String(16))
    external_key: Mapped[str] = mapped_column(sa.String(36))
    #: ``create`` | ``update`` | ``delete``
    action: Mapped[str] = mapped_column(sa.String(8))
    body: Mapped[dict[str, Any] | None]
    body_hash: Mapped[str | None] = mapped_column(sa.String(64))
    depends_on: Mapped[list[Any]] = mapped_column(default=list)
    #: :class:`syncd.states.OpState`: ``pending`` until settled, then ``done`` | ``failed`` | ``skipped``
    state: Mapped[str] = mapped_column(sa.String(12))
    attempts: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(sa.String(48))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: lease fencing token of the process that sent it
    fencing_token: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    settled_at: Mapped[dt.datetime | None]


class Lease(Base):
    """Leader lease (PostgreSQL): one row per lease name, with expiry and a fencing token."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(200))
    token: Mapped[int] = mapped_column(sa.BigInteger)
    acquired_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


# ------------------------------------------------------------------------------------- identity


class DatabaseIdentity(Base):
    """One row, written when the schema is created: which staging database this is.

    A process remembers it when it opens the database and checks it before a run ends
    (:mod:`syncd.db.identity`), so a database swapped or recreated under it fails the run.
    """

    __tablename__ = "database_identity"
    #: a UUID, never changed
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    created_at: Mapped[dt.datetime]


# ------------------------------------------------------------------------------------- vendor facts


class VendorFact(Base):
    """Something syncd learned about a vendor and keeps across runs, such as the WORKBOX signature
    variant ``workbox.signature = "auto"`` found to work.  Never a secret."""

    __tablename__ = "vendor_facts"
    vendor: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    fact: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(200))
    learned_at: Mapped[dt.datetime]
