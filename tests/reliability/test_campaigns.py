"""Small versions of the reliability campaigns (issue 8), on SQLite and PostgreSQL.

The full campaigns are ``python -m bench.reliability`` (see docs/reliability.md); these run the same
code with fewer runs so that CI catches a regression in crash safety, fault tolerance, hostile-input
handling or secret hygiene.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.campaigns.crash import crash_campaign
from tests.support.campaigns.faults import fault_campaign
from tests.support.campaigns.hostile import hostile_campaign

pytestmark = pytest.mark.slow


async def test_crash_campaign_small(db_url: str, tmp_path: Path) -> None:
    report = await crash_campaign(db_url, tmp_path, runs=2, seed=3, employees=25)
    assert report.failures() == []
    assert report.converged == len(report.runs) == 2
    assert (len(report.duplicates), report.lost, report.ledger_mismatches) == (0, 0, 0)
    assert report.leak_hits == []
    assert report.leak_values["workbox signature"] > 0 and report.leak_values["ssn"] > 0


async def test_fault_campaign_small(db_url: str, tmp_path: Path) -> None:
    report = await fault_campaign(db_url, tmp_path, rounds=1, seed=3, employees=25)
    assert report.all_exact, report.rounds
    assert report.rounds[-1].cycles <= 3, report.rounds
    assert report.injected > 0
    assert report.leak_hits == []
    # tokens issued are in the scan (a 2 s token is renewed only if the campaign runs long enough;
    # renewal itself is proven by tests/vendors over a 10 s run)
    assert report.leak_values["whosoff token"] >= 1


async def test_hostile_input_corpus(db_url: str, tmp_path: Path) -> None:
    report = await hostile_campaign(db_url, tmp_path, employees=40)
    print(report.table())
    assert len(report.cases) >= 40
    failed = [f"{o.case.source} / {o.case.name}: {o.actual} ({o.note})" for o in report.cases if not o.ok]
    assert failed == []
    assert report.leak_hits == []
