"""Engine fixtures: a sandbox, settings pointing at it, and an open SyncContext on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
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
    return 120


@pytest.fixture
async def world(db_url: str, employees: int) -> AsyncIterator[World]:
    async with run_sandbox(SandboxOptions(employees=employees, seed=3, port=0)) as sb:
        settings = settings_for(sb, db_url)
        async with SyncContext.open(settings) as ctx:
            yield World(sb, settings, ctx)


def write_config(
    sb: Sandbox, db_url: str, path: Path, *, sync: str = "max_deletes = 1000\nmax_delete_ratio = 1.0"
) -> Path:
    """A TOML config for a syncd subprocess pointing at ``sb``."""
    c = sb.credentials
    text = f"""
[database]
url = "{db_url}"
[infinityhr]
url = "{sb.infinityhr_url}"
vendor_id = "{c["infinityhr"]["vendor_id"]}"
vendor_password = "{c["infinityhr"]["vendor_password"]}"
[whosoff]
url = "{sb.whosoff_url}"
app_id = "{c["whosoff"]["app_id"]}"
client_secret = "{c["whosoff"]["client_secret"]}"
username = "{c["whosoff"]["username"]}"
password = "{c["whosoff"]["password"]}"
ip_address = "{c["whosoff"]["ip_address"]}"
[workbox]
url = "{sb.workbox_url}"
company_id = "{c["workbox"]["company_id"]}"
api_key = "{c["workbox"]["api_key"]}"
access_key = "{c["workbox"]["access_key"]}"
secret_key = "{c["workbox"]["secret_key"]}"
max_concurrency = 2
requests_per_second = 1000.0
[sync]
{sync}
[log]
format = "json"
"""
    path.write_text(text)
    return path
