"""Issue 13 hole 4: an InfinityHR paged read is trusted only when its pages agree (SQLite and PostgreSQL).

A read is trusted when the records read equal TotalCount, no EmployeeID repeats across pages and
TotalCount did not change between pages; otherwise it is read again once, and a second inconsistent
read makes the source stale: nobody is deleted.
"""

from __future__ import annotations

from typing import Any

import pytest

from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from tests.engine.conftest import World
from tests.support.config import settings_for


async def _cycle_with_pages_of_20(world: World, db_url: str) -> Any:
    settings = settings_for(world.sb, db_url)
    ihr = settings.infinityhr.model_copy(update={"page_size": 20})
    async with SyncContext.open(settings.model_copy(update={"infinityhr": ihr})) as ctx:
        return await run_cycle(ctx)


def _reads(world: World) -> int:
    """GetEmployeesAll requests so far."""
    return int(world.sb.request_log.count(vendor="infinityhr", op="GetEmployeesAll"))


@pytest.mark.parametrize(
    ("faults", "why"),
    [
        # a purge while the pages are read: later pages shift, one unrelated employee is never seen
        ({"purge_after_page": 1}, "TotalCount changed from 120 to 119 between pages 1 and 2"),
        # a page answered short with TotalCount unchanged (too few to trip max_source_shrink)
        ({"page_short": 3, "page_short_by": 5}, "read 115 of TotalCount 120"),
        # a page that starts one record early: the previous page's last employee again, one missed
        ({"page_repeat": 2}, "on pages 1 and 2"),
    ],
    ids=["purge-shift", "short-page", "repeated-record"],
)
async def test_an_inconsistent_paged_read_deletes_nobody_and_is_stale(
    world: World, db_url: str, faults: dict[str, int], why: str
) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    ledger = (await world.ctx.ledger_and_digest())[0]
    world.sb.faults["infinityhr"].update(faults)  # on every read, so the re-read is no better
    before, reads = world.workbox_requests(), _reads(world)
    report = await _cycle_with_pages_of_20(world, db_url)
    assert report.result == "stale" and report.exit_code == 1, report.message()
    assert [(s, k) for s, k, _ in report.stale] == [("infinityhr", "employee")]
    reason = report.stale[0][2]
    assert why in reason and "read twice" in reason, reason
    assert _reads(world) - reads == 12  # 6 pages, read once more after the first inconsistent read
    assert world.workbox_requests(method="DELETE") == 0
    assert world.workbox_requests() == before
    assert (await world.ctx.ledger_and_digest())[0] == ledger


async def test_one_inconsistent_read_is_read_again_and_the_consistent_one_is_trusted(
    world: World, db_url: str
) -> None:
    assert (await run_cycle(world.ctx)).exit_code == 0
    world.sb.faults["infinityhr"].update({"page_short": 2, "page_short_by": 4, "page_fault_count": 1})
    before = world.workbox_requests()
    report = await _cycle_with_pages_of_20(world, db_url)
    assert report.exit_code == 0 and report.result == "success", report.message()
    assert report.ops == [] and world.workbox_requests() == before  # nothing changed, nobody deleted
