"""Read-only views of the staging database for operators: recent runs, the quarantine, held plans."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncd.db.models import Plan, QuarantineEntry, SyncRun
from syncd.states import PlanStatus


async def recent_runs(sessions: async_sessionmaker[AsyncSession], limit: int = 20) -> list[dict[str, Any]]:
    async with sessions() as db:
        runs = (await db.execute(sa.select(SyncRun).order_by(SyncRun.id.desc()).limit(limit))).scalars().all()
    return [
        {
            c: getattr(r, c)
            for c in (
                "id",
                "trigger",
                "started_at",
                "finished_at",
                "result",
                "plan_id",
                "counts",
                "quarantine_size",
                "stale_sources",
                "error",
            )
        }
        for r in runs
    ]


async def quarantine(sessions: async_sessionmaker[AsyncSession]) -> list[QuarantineEntry]:
    async with sessions() as db:
        stmt = sa.select(QuarantineEntry).order_by(
            QuarantineEntry.source, QuarantineEntry.kind, QuarantineEntry.record_key
        )
        return list((await db.execute(stmt)).scalars().all())


async def held_plans(sessions: async_sessionmaker[AsyncSession]) -> list[Plan]:
    async with sessions() as db:
        stmt = sa.select(Plan).where(Plan.status == PlanStatus.HELD).order_by(Plan.created_at.desc())
        return list((await db.execute(stmt)).scalars().all())
