"""Engine fixtures: a sandbox, settings pointing at it, and an open SyncContext on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from syncd.config import Settings
from syncd.engine.run import SyncContext
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox


def settings_for(sb: Sandbox, db_url: str, **sync: Any) -> Settings:
    creds = sb.credentials
    fast = {"retry_backoff_initial": 0.05, "retry_backoff_max": 0.2, "retry_attempts": 3, "timeout": 10.0}
    return Settings(
        database={"url": db_url},
        infinityhr={"url": sb.infinityhr_url, **creds["infinityhr"], **fast},
        whosoff={"url": sb.whosoff_url, **creds["whosoff"], **fast},
        workbox={"url": sb.workbox_url, **creds["workbox"], **fast, "requests_per_second": 2000.0},
        sync=sync,
    )


@dataclass
class World:
    sb: Sandbox
    settings: Settings
    ctx: SyncContext

    def workbox_requests(self, **filters: Any) -> int:
        return int(self.sb.request_log.count(vendor="workbox", **filters))

    def state(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (kind, key): body
            for kind, objs in self.sb.workbox_state.to_json().items()
            for key, body in objs.items()
        }


@pytest.fixture
def employees() -> int:
    return 200


@pytest.fixture
async def world(db_url: str, employees: int) -> AsyncIterator[World]:
    async with run_sandbox(SandboxOptions(employees=employees, seed=3, port=0)) as sb:
        settings = settings_for(sb, db_url)
        async with SyncContext.open(settings) as ctx:
            yield World(sb, settings, ctx)
