"""Read-only views of the staging database for operators: recent runs, the quarantine, held plans."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd.db.models import Plan, QuarantineEntry, SyncRun
from syncd.states import PlanStatus


async def recent_runs(sessions: async_sessionmaker[AsyncSession], limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first, each with its plan's status and who approved it (if anyone)."""
    async with sessions() as db:
        runs = (await db.execute(sa.select(SyncRun).order_by(SyncRun.id.desc()).limit(limit))).scalars().all()
        plan_ids = {r.plan_id for r in runs if r.plan_id}
        plans = {
            p.id: p for p in (await db.execute(sa.select(Plan).where(Plan.id.in_(plan_ids)))).scalars().all()
        }
    return [_with_plan(r, plans.get(r.plan_id or "")) for r in runs]


def _with_plan(run: SyncRun, plan: Plan | None) -> dict[str, Any]:
    row = _run_row(run)
    row["plan_status"] = plan.status if plan else None
    row["approved_by"] = plan.approved_by if plan else None
    row["approved_at"] = plan.approved_at if plan else None
    return row


_RUN_COLUMNS = (
    "id", "trigger", "started_at", "finished_at", "result", "plan_id", "counts", "quarantine_size",
    "stale_sources", "error",
)  # fmt: skip


def _run_row(r: SyncRun) -> dict[str, Any]:
    return {c: getattr(r, c) for c in _RUN_COLUMNS}


async def quarantine(sessions: async_sessionmaker[AsyncSession]) -> list[QuarantineEntry]:
    async with sessions() as db:
        stmt = sa.select(QuarantineEntry).order_by(
            QuarantineEntry.source, QuarantineEntry.kind, QuarantineEntry.record_key
        )
        return list((await db.execute(stmt)).scalars().all())


async def held_plans(sessions: async_sessionmaker[AsyncSession]) -> list[Plan]:
    async with sessions() as db:
        stmt = (
            sa.select(Plan)
            .where(Plan.status.in_((PlanStatus.HELD, PlanStatus.QUEUED)))
            .order_by(Plan.created_at.desc())
        )
        return list((await db.execute(stmt)).scalars().all())
