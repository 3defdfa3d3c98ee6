"""Credential managers without HTTP: renewal points, single in-flight renewal, stale renewals, keep-alive.

Expiry is driven by a :class:`FakeClock`; nothing sleeps for a credential to age.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.config import InfinityHRSettings, WhosOffSettings
from syncd.errors import TokenExpiredError
from syncd.metrics import CREDENTIAL_RENEWALS
from syncd.sandbox import Sandbox
from syncd.vendors import WhosOffClient
from syncd.vendors.credentials import Grant, InfinityHRSessionManager, WhosOffTokenManager

from .conftest import FakeClock, whosoff_settings


class FakeIssuer:
    def __init__(self, lifetime: float, *, refuse_refresh: bool = False) -> None:
        self.lifetime = lifetime
        self.refuse_refresh = refuse_refresh
        self.calls: list[str] = []

    async def _issue(self, how: str) -> Grant:
        self.calls.append(how)
        await asyncio.sleep(0.01)  # let concurrent callers pile up
        return Grant(SecretStr(f"value-{len(self.calls)}"), self.lifetime)

    async def with_credentials(self) -> Grant:
        return await self._issue("credentials")

    async def with_access_token(self, token: SecretStr) -> Grant:
        if self.refuse_refresh:
            self.calls.append("refused")
            raise TokenExpiredError("whosoff", "refused", code="TOK004")
        return await self._issue("refresh")

    async def authenticate(self) -> Grant:
        return await self._issue("authenticate")


def wo_settings(**kw: Any) -> WhosOffSettings:
    base: dict[str, Any] = {
        "url": "http://127.0.0.1:9", "app_id": "a", "client_secret": SecretStr("c"), "username": "u",
        "password": SecretStr("p"), "ip_address": "127.0.0.1",
    }  # fmt: skip
    return WhosOffSettings(**{**base, **kw})


def ihr_settings(**kw: Any) -> InfinityHRSettings:
    base: dict[str, Any] = {"url": "http://127.0.0.1:9", "vendor_id": "v", "vendor_password": SecretStr("p")}
    return InfinityHRSettings(**{**base, **kw})


async def test_whosoff_renews_at_fraction_minus_margin(clock: FakeClock) -> None:
    issuer = FakeIssuer(3600.0)
    tokens = WhosOffTokenManager(wo_settings(), issuer, clock=clock.monotonic, wall=clock.time)
    assert tokens.expires_at is None and tokens.renew_at is None
    await tokens.get()
    now = clock.time()
    assert tokens.expires_at is not None and tokens.renew_at is not None
    assert tokens.expires_at == pytest.approx(now + 3600, abs=1)
    assert tokens.renew_at == pytest.approx(now + 0.8 * 3600 - 30, abs=1)
    assert issuer.calls == ["credentials"]


async def test_margin_never_makes_every_call_a_renewal(clock: FakeClock) -> None:
    issuer = FakeIssuer(2.0)  # margin 30 s > lifetime
    tokens = WhosOffTokenManager(wo_settings(), issuer, clock=clock.monotonic, wall=clock.time)
    await tokens.get()
    assert tokens.renew_at is not None
    assert tokens.renew_at - clock.time() == pytest.approx(0.8, abs=0.1)
    clock.advance(0.7)
    await tokens.get()
    assert issuer.calls == ["credentials"]  # not due yet: no renewal


async def test_concurrent_callers_share_one_renewal(clock: FakeClock) -> None:
    issuer = FakeIssuer(0.05)
    tokens = WhosOffTokenManager(wo_settings(clock_skew_margin=0.0), issuer, clock=clock.monotonic)
    await tokens.get()
    clock.advance(0.06)  # past renew_at and expiry
    values = await asyncio.gather(*(tokens.get() for _ in range(20)))
    assert issuer.calls == ["credentials", "refresh"]
    assert len({v.get_secret_value() for v in values}) == 1


async def test_stale_renewal_is_skipped_when_someone_renewed() -> None:
    issuer = FakeIssuer(3600.0)
    tokens = WhosOffTokenManager(wo_settings(), issuer)
    used = await tokens.get()
    results = await asyncio.gather(*(tokens.renew("reactive", stale=used) for _ in range(10)))
    assert issuer.calls == ["credentials", "credentials"]  # one renewal for ten refused callers
    assert len({r.get_secret_value() for r in results}) == 1


async def test_refused_token_before_its_expiry_goes_straight_to_credentials() -> None:
    """A token refused while our clock says it is valid was revoked: refreshing it cannot work."""
    issuer = FakeIssuer(3600.0)
    tokens = WhosOffTokenManager(wo_settings(), issuer)
    used = await tokens.get()
    await tokens.renew("reactive", stale=used)
    assert issuer.calls == ["credentials", "credentials"]


async def test_refused_refresh_falls_back_to_credentials(clock: FakeClock) -> None:
    issuer = FakeIssuer(0.05, refuse_refresh=True)
    tokens = WhosOffTokenManager(wo_settings(clock_skew_margin=0.0), issuer, clock=clock.monotonic)
    before = CREDENTIAL_RENEWALS.labels("whosoff", "credentials")._value.get()
    first = await tokens.get()
    clock.advance(0.06)  # expired: a refresh is the documented way back
    second = await tokens.renew("reactive", stale=first)
    assert issuer.calls == ["credentials", "refused", "credentials"]
    assert first.get_secret_value() != second.get_secret_value()
    assert CREDENTIAL_RENEWALS.labels("whosoff", "credentials")._value.get() - before == 2


async def test_keep_alive_renews_only_when_due(clock: FakeClock) -> None:
    issuer = FakeIssuer(0.2)
    tokens = WhosOffTokenManager(wo_settings(clock_skew_margin=0.0), issuer, clock=clock.monotonic)
    assert await tokens.keep_alive() is False  # nothing to keep alive yet
    await tokens.get()
    assert await tokens.keep_alive() is False
    clock.advance(0.17)
    assert await tokens.keep_alive() is True
    assert issuer.calls == ["credentials", "refresh"]


async def test_infinityhr_session_tracks_idle_time(clock: FakeClock) -> None:
    issuer = FakeIssuer(1200.0)
    sessions = InfinityHRSessionManager(ihr_settings(), issuer, clock=clock.monotonic, wall=clock.time)
    session = await sessions.get()
    t0 = clock.time()
    assert sessions.renew_at == pytest.approx(t0 + 1200 - 120, abs=1)
    sessions.touch(session, clock.monotonic() + 60)  # a call sent a minute later
    assert sessions.expires_at == pytest.approx(t0 + 60 + 1200, abs=1)
    assert sessions.renew_at == pytest.approx(t0 + 60 + 1080, abs=1)
    sessions.touch(SecretStr("another"), clock.monotonic() + 600)  # not the current session: ignored
    assert sessions.expires_at == pytest.approx(t0 + 60 + 1200, abs=1)


async def test_infinityhr_idle_timeout_learned_from_the_service(clock: FakeClock) -> None:
    issuer = FakeIssuer(2.0)  # SessionEnd - SessionStart = 2 s
    settings = ihr_settings(session_renew_margin=0.5)
    sessions = InfinityHRSessionManager(settings, issuer, clock=clock.monotonic, wall=clock.time)
    await sessions.get()
    assert sessions.idle_timeout == 2.0
    assert sessions.renew_at is not None and sessions.renew_at - clock.time() == pytest.approx(1.5, abs=0.1)


async def test_request_logs_carry_the_agreed_keys(
    sandbox: Sandbox, http: aiohttp.ClientSession, captured_logs: list[MutableMapping[str, Any]]
) -> None:
    await WhosOffClient(http, whosoff_settings(sandbox)).get_departments()
    requests = [e for e in captured_logs if e["event"] == "vendor.request"]
    assert [e["method"] for e in requests] == ["authenticate/with-credentials", "department/retrieve"]
    for event in requests:
        assert event["vendor"] == "whosoff" and event["status"] == "200"
        assert isinstance(event["elapsed_ms"], float) and event["attempt"] == 1
    renewed = [e for e in captured_logs if e["event"] == "credential.renewed"]
    assert len(renewed) == 1 and renewed[0]["how"] == "credentials"
