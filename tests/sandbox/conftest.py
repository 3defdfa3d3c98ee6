from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxOptions(employees=120, seed=7, port=0)) as sb:
        yield sb


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session
