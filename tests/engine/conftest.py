"""Engine fixtures: a sandbox, settings pointing at it, and an open SyncContext on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from syncd.cli import render_toml
from syncd.config import Settings
from syncd.engine.context import SyncContext
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox

#: quick retries, so a test that injects faults does not wait for production backoff
FAST = {"retry_backoff_initial": 0.05, "retry_backoff_max": 0.2, "retry_attempts": 3, "timeout": 10.0}


def settings_for(sb: Sandbox, db_url: str, **sync: Any) -> Settings:
    return Settings.model_validate(sb.syncd_config(
        db_url, infinityhr=FAST, whosoff=FAST, workbox={**FAST, "requests_per_second": 2000.0}, sync=sync,
    ))  # fmt: skip


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
    return 120


@pytest.fixture
async def world(db_url: str, employees: int) -> AsyncIterator[World]:
    async with run_sandbox(SandboxOptions(employees=employees, seed=3, port=0)) as sb:
        settings = settings_for(sb, db_url)
        async with SyncContext.open(settings) as ctx:
            yield World(sb, settings, ctx)


def write_config(sb: Sandbox, db_url: str, path: Path, *, sync: dict[str, Any] | None = None) -> Path:
    """A TOML config for a syncd subprocess pointing at ``sb`` (deletes are not held unless ``sync`` says)."""
    config = sb.syncd_config(
        db_url,
        workbox={"max_concurrency": 2, "requests_per_second": 1000.0},
        sync=sync if sync is not None else {"max_deletes": 1000, "max_delete_ratio": 1.0},
        log={"format": "json"},
    )
    path.write_text(render_toml(config))
    return path
