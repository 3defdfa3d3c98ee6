"""Issue 13 hole 5: an empty ledger against a WORKBOX that answers "already exists" is reported.

The creates of such a run are replayed as updates (create → update): syncd *adopts* objects it had
no record of.  That is one warning line, a counter, and a mark on the run, not 1,398 info lines.
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog

from syncd import metrics
from syncd.db.models import SyncRun
from syncd.engine.cycle import run_cycle
from syncd.states import RunResult
from tests.engine.conftest import World


def _adopted_total() -> float:
    return metrics.REGISTRY.get_sample_value("syncd_adopted_objects_total") or 0.0


async def _run_counts(world: World, run_id: int) -> dict[str, object]:
    async with world.ctx.sessions() as db:
        counts = (await db.execute(sa.select(SyncRun.counts).where(SyncRun.id == run_id))).scalar_one()
    return dict(counts)


async def test_a_lost_ledger_is_reported_as_adoption(world: World) -> None:
    first = await run_cycle(world.ctx)
    assert first.result is RunResult.SUCCESS, first.message()
    n = len(world.state())
    assert n > 100

    async with world.ctx.engine.begin() as conn:  # the ledger is lost; WORKBOX still holds everything
        await conn.execute(sa.text("DELETE FROM ledger"))
    before = _adopted_total()
    with structlog.testing.capture_logs() as logs:
        report = await run_cycle(world.ctx)

    assert report.result is RunResult.SUCCESS, report.message()
    adopted = [e for e in logs if e["event"] == "apply.adopted"]
    assert len(adopted) == 1, adopted
    assert adopted[0]["log_level"] == "warning" and adopted[0]["count"] == n
    replays = [e for e in logs if e["event"] == "apply.replay"]
    assert len(replays) == n and {e["log_level"] for e in replays} == {"debug"}
    assert _adopted_total() - before == n
    assert (await _run_counts(world, report.run_id))["adopted"] == n
    assert f"{n} objects adopted" in report.message(), report.message()
    assert (await world.ctx.ledger_and_digest())[0] == world.state()


async def test_an_ordinary_run_adopts_nothing(world: World) -> None:
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            report = await run_cycle(world.ctx)
            assert report.result is RunResult.SUCCESS, report.message()
    assert not [e for e in logs if e["event"] == "apply.adopted"]
    assert "adopted" not in (await _run_counts(world, report.run_id))
    assert "adopted" not in report.message()
