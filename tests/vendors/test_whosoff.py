"""WhosOff: authentication, data calls, token renewal before expiry, revocation, faults."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.errors import ProtocolError, TransientError, VendorConfigError
from syncd.sandbox import Sandbox
from syncd.vendors import WhosOffClient, WhosOffUser
from syncd.vendors.whosoff import make_nonce, request_secret

from .conftest import FakeClock, SandboxFactory, whosoff_settings

AUTH = "/authenticate/"


def auth_count(sb: Sandbox, action: str = "") -> int:
    return sb.request_log.count(vendor="whosoff", path_contains=AUTH + action)


def test_nonce_and_secret_follow_the_contract() -> None:
    nonces = {make_nonce() for _ in range(1000)}
    assert len(nonces) == 1000 and all(len(n) == 32 for n in nonces)
    expected = hashlib.sha512(b"n" * 32 + b"cs").hexdigest()
    assert request_secret("n" * 32, "cs") == expected and len(expected) == 128


async def test_users_and_departments(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox))
    users, invalid = await client.get_users()
    assert invalid == []
    assert len(users) == len(sandbox.company.whosoff_users)
    assert all(isinstance(u, WhosOffUser) for u in users)
    departments, bad = await client.get_departments()
    assert bad == [] and len(departments) == len(sandbox.company.whosoff_departments)
    active, _ = await client.get_users(status_id=1)
    assert {u.status_id for u in active} == {1}
    assert auth_count(sandbox) == 1  # one token for all three calls
    assert sandbox.request_log.count(vendor="whosoff", path_contains="with-credentials") == 1
    assert client.tokens.expires_at is not None and client.tokens.renew_at is not None
    assert client.tokens.renew_at < client.tokens.expires_at


@pytest.mark.slow
async def test_short_lived_token_is_renewed_before_expiry(
    make_sandbox: SandboxFactory, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sb = await make_sandbox(whosoff_token_lifetime=2.0)
    sb.whosoff.clock = clock.time
    settings = whosoff_settings(sb, clock_skew_margin=0.2)
    client = WhosOffClient(http, settings, clock=clock.monotonic, wall=clock.time)
    end = clock.time() + 10.0
    calls = 0
    async with asyncio.timeout(30):
        while clock.time() < end:  # a call every 50 ms for 10 s (of the fake clock)
            await client.get_departments()
            calls += 1
            clock.advance(0.05)
    log = sb.request_log
    data_calls = log.count(vendor="whosoff", path_contains="/department/retrieve")
    assert data_calls == calls > 50
    assert log.count(vendor="whosoff", code="TOK004") == 0  # no data call ever met an expired token
    renewals = log.count(vendor="whosoff", path_contains="with-access-token", status=200)
    assert 5 <= renewals <= 10  # every ~1.4 s over 10 s, by with-access-token
    assert log.count(vendor="whosoff", path_contains="with-credentials") == 1


async def test_revoked_token_costs_one_reauthentication(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox))
    await client.get_departments()
    issued = len(sandbox.whosoff.tokens)
    async with http.post(f"{sandbox.control_url}/whosoff/revoke") as resp:
        assert resp.status == 200
    users, _ = await client.get_users()  # must not fail
    assert users
    log = sandbox.request_log
    assert len(sandbox.whosoff.tokens) == issued + 1  # exactly one new token
    assert log.count(vendor="whosoff", path_contains="/user/retrieve", code="TOK004") == 1
    assert log.count(vendor="whosoff", path_contains="/user/retrieve", status=200) == 1
    # a token refused before its own expiry was revoked: the one re-authentication is with
    # credentials, without a doomed with-access-token first
    assert log.count(vendor="whosoff", path_contains="with-access-token") == 0
    assert log.count(vendor="whosoff", path_contains="with-credentials") == 2  # first login + one


async def test_concurrent_calls_at_expiry_share_one_renewal(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox, max_concurrency=20))
    await client.get_departments()
    await client.tokens.invalidate()  # as if the renew time had come
    before = auth_count(sandbox)
    async with asyncio.timeout(15):
        await asyncio.gather(*(client.get_departments() for _ in range(20)))
    assert auth_count(sandbox) - before == 1


async def test_concurrent_calls_after_revocation_share_one_renewal(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox, max_concurrency=20))
    await client.get_departments()
    sandbox.whosoff.revoke_all()
    async with asyncio.timeout(15):
        await asyncio.gather(*(client.get_departments() for _ in range(20)))
    # 20 calls refused with TOK004 cause exactly one authenticate request (with credentials)
    assert sandbox.request_log.count(vendor="whosoff", path_contains="with-credentials") == 2
    assert sandbox.request_log.count(vendor="whosoff", path_contains="with-access-token") == 0


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("password", SecretStr("wrong"), "whosoff.password"),
        ("client_secret", SecretStr("wrong"), "whosoff.client_secret"),
        ("app_id", "WRONGAPP", "whosoff.app_id"),
        ("ip_address", "10.9.9.9", "whosoff.ip_address"),
    ],
)
async def test_auth_failures_name_the_key_to_check(
    sandbox: Sandbox, http: aiohttp.ClientSession, field: str, value: object, key: str
) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox, **{field: value}))
    with pytest.raises(VendorConfigError, match=key.replace(".", r"\.")):
        await client.get_users()
    assert auth_count(sandbox) == 1  # not retried


async def test_rate_limit_and_server_errors_are_retried(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox))
    await client.get_departments()
    f = sandbox.faults["whosoff"]
    f.rate_limit, f.retry_after = 1, 1
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.get_departments()
    assert loop.time() - started >= 0.95  # Retry-After: 1 honoured
    f.error_rate, f.hang_rate, f.hang_seconds, f.drop_rate = 0.3, 0.1, 5.0, 0.05
    fast = WhosOffClient(http, whosoff_settings(sandbox, timeout=0.5))
    async with asyncio.timeout(30):
        for _ in range(10):
            users, _ = await fast.get_users()
            assert users


async def test_retry_gives_up_at_the_attempt_cap(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox, retry_attempts=3))
    await client.get_departments()
    sandbox.faults["whosoff"].error_rate = 1.0
    with pytest.raises(TransientError):
        await client.get_departments()
    assert sandbox.request_log.count(vendor="whosoff", path_contains="/department/retrieve", status=500) == 3


async def test_malformed_json_is_a_protocol_error(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox))
    sandbox.faults["whosoff"].corrupt = "malformed"
    with pytest.raises(ProtocolError, match="not valid JSON"):
        await client.get_users()
    users, _ = await client.get_users()  # the next response is fine again
    assert users


async def test_gzip_body_cut_short_is_retried(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    # the sandbox announces the full length, sends half the gzip stream and closes the connection:
    # a transport failure, retried; a persistent one ends in a clear TransientError
    client = WhosOffClient(http, whosoff_settings(sandbox, retry_attempts=3))
    f = sandbox.faults["whosoff"]
    f.corrupt = "truncated_gzip"
    users, _ = await client.get_users()
    assert users
    assert sandbox.request_log.count(vendor="whosoff", path_contains="/user/retrieve") == 2
    f.corrupt, f.corrupt_count = "truncated_gzip", 100
    with pytest.raises(TransientError, match="cut short"):
        await client.get_users()


async def test_gzip_responses_are_read(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = WhosOffClient(http, whosoff_settings(sandbox))
    users, _ = await client.get_users()
    assert len(users) == len(sandbox.company.whosoff_users)  # the sandbox gzips when asked (we ask)


async def test_invalid_user_record_is_reported_not_raised(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    some = next(iter(sandbox.company.whosoff_users.values()))
    real = type(some).to_json

    def broken(self: object, email_field: str = "email_contact") -> dict[str, object]:
        data = real(self, email_field)  # type: ignore[arg-type]
        if self is some:
            data["user_id"] = "not-a-number"
        return data

    type(some).to_json = broken  # type: ignore[method-assign]
    try:
        users, invalid = await WhosOffClient(http, whosoff_settings(sandbox)).get_users()
    finally:
        type(some).to_json = real  # type: ignore[method-assign]
    assert len(invalid) == 1 and invalid[0].source == "whosoff" and "user_id" in invalid[0].reason
    assert len(users) == len(sandbox.company.whosoff_users) - 1
