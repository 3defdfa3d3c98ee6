"""Engine fixtures: a sandbox, settings pointing at it (:mod:`tests.support.config`), and an open
SyncContext on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from syncd.config import Settings
from syncd.engine.context import SyncContext
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from tests.support.config import settings_for
from tests.support.workbox import State, workbox_requests, workbox_state


@dataclass
class World:
    sb: Sandbox
    settings: Settings
    ctx: SyncContext

    def workbox_requests(self, **filters: Any) -> int:
        return workbox_requests(self.sb, **filters)

    def state(self) -> State:
        return workbox_state(self.sb)


@pytest.fixture
def employees() -> int:
    return 120


@pytest.fixture
async def world(db_url: str, employees: int) -> AsyncIterator[World]:
    async with run_sandbox(SandboxOptions(employees=employees, seed=3, port=0)) as sb:
        settings = settings_for(sb, db_url)
        async with SyncContext.open(settings) as ctx:
            yield World(sb, settings, ctx)
