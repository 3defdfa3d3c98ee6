"""Fixtures for the vendor clients: a sandbox on loopback, an HTTP session, settings, and a leak scan.

Every test in this package captures all log events (``structlog.testing.capture_logs``) and, at the
end, scans them for every secret in play: the configured credentials, every WhosOff token the sandbox
issued, every InfinityHR session id, every nonce and nonce-derived secret, every WORKBOX signature the
clients computed, every SSN and personal e-mail of the sandbox company.  None may appear.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import aiohttp
import pytest
import structlog
from pydantic import SecretStr

import syncd.vendors.whosoff as whosoff_mod
from syncd.config import InfinityHRSettings, WhosOffSettings, WorkboxSettings
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.vendors.credentials import Grant
from syncd.vendors.infinityhr import InfinityHRAuth
from syncd.vendors.workbox import WorkboxClient

#: fast retries for tests: many attempts, short backoff, bounded deadline
FAST = {
    "timeout": 2.0,
    "connect_timeout": 1.0,
    "retry_attempts": 10,
    "retry_deadline": 20.0,
    "retry_backoff_initial": 0.01,
    "retry_backoff_max": 0.1,
    "requests_per_second": 1000.0,
}


class FakeClock:
    """Monotonic and unix time that move only when the test says so: expiry without sleeping.

    It starts on a whole second (WhosOff's ``token_expiry_date`` has whole seconds), so a renewal
    schedule is the same on every run.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class SecretsInPlay:
    def __init__(self) -> None:
        self.values: set[str] = set()
        self.sandboxes: list[Sandbox] = []

    def add(self, value: str | None) -> None:
        if value:
            self.values.add(value)


@pytest.fixture
def in_play(monkeypatch: pytest.MonkeyPatch) -> SecretsInPlay:
    """Records every nonce, nonce-derived secret, session id and signature the clients make."""
    seen = SecretsInPlay()

    real_nonce, real_secret = whosoff_mod.make_nonce, whosoff_mod.request_secret

    def make_nonce() -> str:
        value = real_nonce()
        seen.add(value)
        return value

    def request_secret(nonce: str, client_secret: str) -> str:
        value = real_secret(nonce, client_secret)
        seen.add(value)
        return value

    monkeypatch.setattr(whosoff_mod, "make_nonce", make_nonce)
    monkeypatch.setattr(whosoff_mod, "request_secret", request_secret)

    real_auth = InfinityHRAuth.authenticate

    async def authenticate(self: InfinityHRAuth) -> Grant:
        grant = await real_auth(self)
        seen.add(grant.value.get_secret_value())
        return grant

    monkeypatch.setattr(InfinityHRAuth, "authenticate", authenticate)

    real_headers = WorkboxClient.signed_headers

    def signed_headers(self: WorkboxClient, http_method: str, uri: str) -> dict[str, str]:
        headers = real_headers(self, http_method, uri)
        for name, value in headers.items():
            if "signature" in name:
                seen.add(value)
        return headers

    monkeypatch.setattr(WorkboxClient, "signed_headers", signed_headers)
    return seen


@pytest.fixture
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        yield logs


SandboxFactory = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def make_sandbox(in_play: SecretsInPlay) -> AsyncIterator[SandboxFactory]:
    """Start a sandbox with ``SandboxOptions(**options)`` on an ephemeral loopback port."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> Sandbox:
            opts = {"employees": 50, "seed": 1, "host": "127.0.0.1", "port": 0, **options}
            sb = await stack.enter_async_context(run_sandbox(SandboxOptions(**opts)))
            in_play.sandboxes.append(sb)
            return sb

        yield start


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    return await make_sandbox()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(autouse=True)
def _leak_scan(captured_logs: list[MutableMapping[str, Any]], in_play: SecretsInPlay) -> Iterator[None]:
    yield
    values = set(in_play.values)
    for sb in in_play.sandboxes:
        values |= sandbox_secrets(sb)
    values = {v for v in values if len(v) >= 6}
    text = "\n".join(json.dumps(event, default=str) for event in captured_logs)
    leaked = sorted(v for v in values if v in text)
    assert not leaked, f"{len(leaked)} secret value(s) appear in log output"


def sandbox_secrets(sb: Sandbox) -> set[str]:
    out: set[str] = set()
    for creds in sb.credentials.values():
        for key, value in creds.items():
            if key not in ("company_id", "ip_address", "app_id", "access_key", "username"):
                out.add(value)
    out |= set(sb.whosoff.tokens)
    out |= set(sb.infinityhr.sessions)
    for emp in sb.company.employees.values():
        out.add(emp.ssn)
        out.add(emp.personal_email)
    return out


def whosoff_settings(sb: Sandbox, **overrides: Any) -> WhosOffSettings:
    c = sb.credentials["whosoff"]
    base: dict[str, Any] = {
        "url": sb.whosoff_url,
        "app_id": c["app_id"],
        "client_secret": SecretStr(c["client_secret"]),
        "username": c["username"],
        "password": SecretStr(c["password"]),
        "ip_address": c["ip_address"],
    }
    return WhosOffSettings(**{**base, **FAST, **overrides})


def infinityhr_settings(sb: Sandbox, **overrides: Any) -> InfinityHRSettings:
    c = sb.credentials["infinityhr"]
    base: dict[str, Any] = {
        "url": sb.infinityhr_url,
        "vendor_id": c["vendor_id"],
        "vendor_password": SecretStr(c["vendor_password"]),
        "company_id": c["company_id"],
    }
    return InfinityHRSettings(**{**base, **FAST, **overrides})


def workbox_settings(sb: Sandbox, **overrides: Any) -> WorkboxSettings:
    c = sb.credentials["workbox"]
    base: dict[str, Any] = {
        "url": sb.workbox_url,
        "company_id": c["company_id"],
        "api_key": SecretStr(c["api_key"]),
        "access_key": c["access_key"],
        "secret_key": SecretStr(c["secret_key"]),
        "signature": sb.workbox.signature,
    }
    return WorkboxSettings(**{**base, **FAST, **overrides})
