"""A vendor answer that stops pushing for the cycle (the real-vendors issue: the API Gateway's table).

Quota Exceeded (429 ``errorCode 400``) leaves the rest of the plan pending for the next cycle, with one
clear reason, exit 1 and a metric, instead of retrying each operation into a spent quota.
"""

from __future__ import annotations

import pytest

from syncd import metrics
from syncd.engine.cycle import run_cycle
from syncd.states import RunResult
from tests.engine.conftest import World


@pytest.fixture
def employees() -> int:
    return 40


def _quota_stops() -> float:
    return (
        metrics.REGISTRY.get_sample_value("syncd_vendor_quota_exceeded_total", {"vendor": "workbox"}) or 0.0
    )


async def test_quota_exceeded_stops_the_cycle_and_the_next_one_finishes(world: World) -> None:
    before = _quota_stops()
    world.sb.faults["workbox"].update({"gateway_error": "400", "gateway_error_count": 1000})
    report = await run_cycle(world.ctx, trigger="test")
    assert report.result is RunResult.FAILED and report.exit_code == 1
    assert report.error and "Quota Exceeded" in report.error and "next" in report.error, report.error
    sent = world.workbox_requests()
    # the first answer stops the cycle: at most one request per worker was in flight, none retried
    assert sent <= world.settings.workbox.max_concurrency, sent
    assert _quota_stops() == before + 1
    assert report.applied is not None and report.applied.pending == len(report.ops)

    world.sb.faults["workbox"].update({"gateway_error": None})
    report = await run_cycle(world.ctx, trigger="test")
    assert report.result is RunResult.SUCCESS, report.error
    again = await run_cycle(world.ctx, trigger="test")
    assert again.result is RunResult.SUCCESS and not again.ops
