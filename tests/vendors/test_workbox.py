"""WORKBOX: the signer (contract vectors), signed writes against the sandbox, E-codes, clock skew."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.errors import (
    AlreadyExistsError,
    EmailTakenError,
    NotFoundError,
    RejectedError,
    VendorConfigError,
)
from syncd.sandbox import Sandbox
from syncd.vendors import WorkboxClient, sign_v1, sign_v2

from .conftest import SandboxFactory, workbox_settings

VECTOR_SECRET = "TESTSECRETKEY0123456789abcdefghijklmnopqr"
VECTOR_URI = (
    "/workbox/workbox/openapi/v1/organization/company/578c7009-bdad-4493-9835-72302cf988c6/dept/0000002"
)
DEPT = {"name": "Engineering", "sortOrd": "1", "uprDeptExternalKey": "#"}


def test_sign_v1_contract_vector() -> None:
    sig = sign_v1(
        VECTOR_SECRET, "POST", VECTOR_URI, "1505290625682",
        "cstWXuw4wqp1EfuqDwZeMz5fh0epaTykRRRuy5Ra", "D78BB444D6D3C84CA38A",
    )  # fmt: skip
    assert sig == "M5SwyPEYpYJwnUsfoEks2vOHHSyWwd7pmSoe19D7Sv8="


def test_sign_v2_contract_vector() -> None:
    sig = sign_v2(VECTOR_SECRET, "POST", VECTOR_URI, "1505290625682", "D78BB444D6D3C84CA38A")
    assert sig == "Iiyn6Q1IQBi/cinsgcUH12SlVDXY0PVRyU1YKYShz20="


@pytest.mark.parametrize("variant", ["v1", "v2"])
async def test_create_update_delete_signed(
    make_sandbox: SandboxFactory, http: aiohttp.ClientSession, variant: str
) -> None:
    sb = await make_sandbox(signature=variant)
    client = WorkboxClient(http, workbox_settings(sb))
    await client.create("dept", "D-1", DEPT)
    await client.create("job-grade", "G.1", {"name": "Senior", "sortOrd": 1})
    await client.update("dept", "D-1", {**DEPT, "name": "Platform"})
    await client.delete("job-grade", "G.1")
    log = sb.request_log
    assert log.count(vendor="workbox", status=401) == 0
    assert log.count(vendor="workbox", method="POST", status=201) == 2
    # the path signed is the one on the wire, base path included
    assert all(
        e["raw_path"].startswith("/workbox/workbox/openapi/v1/") for e in log.matching(vendor="workbox")
    )


async def test_signature_variant_mismatch_is_a_config_error(
    make_sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    sb = await make_sandbox(signature="v2")
    client = WorkboxClient(http, workbox_settings(sb, signature="v1"))
    with pytest.raises(VendorConfigError, match=r"workbox\.signature"):
        await client.create("dept", "D-1", DEPT)
    assert sb.request_log.count(vendor="workbox") == 1


async def test_wrong_secret_key_is_a_config_error(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = WorkboxClient(http, workbox_settings(sandbox, secret_key=SecretStr("not-the-key")))
    with pytest.raises(VendorConfigError, match=r"workbox\.secret_key"):
        await client.create("dept", "D-1", DEPT)
    assert sandbox.request_log.count(vendor="workbox") == 1  # never retried


async def test_gateway_skewed_six_minutes_costs_one_rejected_request(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.workbox.clock_skew = 360.0
    client = WorkboxClient(http, workbox_settings(sandbox))
    # concurrent first calls: only one of them may be rejected
    await asyncio.gather(
        *(client.create("job-grade", f"G{i}", {"name": f"G{i}", "sortOrd": i}) for i in range(8))
    )
    log = sandbox.request_log
    assert log.count(vendor="workbox", status=401) == 1
    assert log.count(vendor="workbox", status=201) == 8
    assert abs(client.clock_offset_ms / 1000 - 360) < 5


async def test_skewed_gateway_whose_first_answer_is_not_a_401_is_still_handled(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """Regression (fault campaign): the first answer was a 429, so the clock was taken as known at
    offset 0; the concurrent requests then got 401s, and all but the first were judged against the
    offset the first had already corrected, so they looked like a configuration error."""
    sandbox.workbox.clock_skew = 360.0
    sandbox.faults["workbox"].update({"rate_limit": 1, "retry_after": 0})
    client = WorkboxClient(http, workbox_settings(sandbox, max_concurrency=16))
    await asyncio.gather(
        *(client.create("job-grade", f"G{i}", {"name": f"G{i}", "sortOrd": i}) for i in range(16))
    )
    log = sandbox.request_log
    assert log.count(vendor="workbox", status=201) == 16
    assert log.count(vendor="workbox", status=401) <= 16  # at most one rejected try per request
    assert abs(client.clock_offset_ms / 1000 - 360) < 5


async def test_e904_distinguishes_exists_from_unknown(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = WorkboxClient(http, workbox_settings(sandbox))
    await client.create("dept", "D-1", DEPT)
    with pytest.raises(AlreadyExistsError) as exists:
        await client.create("dept", "D-1", DEPT)
    assert exists.value.code == "E904"
    with pytest.raises(NotFoundError):
        await client.update("dept", "NOPE", DEPT)
    with pytest.raises(NotFoundError):
        await client.delete("dept", "NOPE")


async def test_e902_is_never_retried(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = WorkboxClient(http, workbox_settings(sandbox))
    with pytest.raises(RejectedError) as err:
        await client.create("dept", "D-1", {**DEPT, "unknownField": 1})
    assert err.value.code == "E902"
    assert not isinstance(err.value, AlreadyExistsError | NotFoundError)
    assert sandbox.request_log.count(vendor="workbox") == 1


async def test_e901_stops_with_a_clear_configuration_error(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.workbox.api_enabled = False
    client = WorkboxClient(http, workbox_settings(sandbox))
    with pytest.raises(VendorConfigError) as err:
        await client.create("dept", "D-1", DEPT)
    assert err.value.code == "E901"
    assert "switched off" in str(err.value) and "admin console" in str(err.value)
    assert sandbox.request_log.count(vendor="workbox") == 1


async def test_transient_faults_are_retried_to_success(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    f = sandbox.faults["workbox"]
    f.error_rate, f.hang_rate, f.hang_seconds = 0.3, 0.1, 5.0
    client = WorkboxClient(http, workbox_settings(sandbox, timeout=0.5))
    async with asyncio.timeout(30):
        await asyncio.gather(
            *(client.create("job-position", f"P{i}", {"name": f"P{i}", "sortOrd": i}) for i in range(20))
        )
    log = sandbox.request_log
    assert log.count(vendor="workbox", code="E1001") + log.count(vendor="workbox", code="HANG") > 0
    assert len(sandbox.workbox_state.job_position) == 20


async def test_rate_limit_retry_after_is_honoured(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    f = sandbox.faults["workbox"]
    f.rate_limit, f.retry_after = 1, 1
    client = WorkboxClient(http, workbox_settings(sandbox))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.create("dept", "D-1", DEPT)
    assert loop.time() - started >= 0.95
    assert sandbox.request_log.count(vendor="workbox", status=429) == 1


async def test_percent_encoded_key_is_signed_as_sent(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    # a key the target refuses (E900) still reaches it with a valid signature: not a 401
    client = WorkboxClient(http, workbox_settings(sandbox))
    with pytest.raises(RejectedError) as err:
        await client.create("dept", "bad key/é", DEPT)
    assert err.value.code == "E900"
    assert sandbox.request_log.count(vendor="workbox", status=401) == 0


async def test_a_taken_email_is_told_apart_from_other_body_errors_by_workbox_email_taken(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """E902 covers every body problem; only an answer to a member whose message matches
    ``workbox.email_taken`` is an unmapped member's address (quarantined, not failed)."""
    client = WorkboxClient(http, workbox_settings(sandbox))
    await client.create("dept", "D-1", {"name": "Eng", "sortOrd": "1", "uprDeptExternalKey": "#"})
    member = {"name": "Kim", "emailAddr": "kim@example.com", "deptExternalKey": "D-1"}
    await client.create("user", "U-1", member)
    with pytest.raises(EmailTakenError, match="already used by another member") as taken:
        await client.create("user", "U-2", member)
    assert taken.value.code == "E902"
    with pytest.raises(RejectedError) as other:  # an unknown reference: a plain rejection
        await client.create("user", "U-3", {**member, "emailAddr": "lee@example.com", "deptExternalKey": "X"})
    assert not isinstance(other.value, EmailTakenError)
    reworded = WorkboxClient(http, workbox_settings(sandbox, email_taken="이미 사용 중인 이메일"))
    with pytest.raises(RejectedError) as unmatched:  # a tenant that words it otherwise: set the key
        await reworded.create("user", "U-2", member)
    assert not isinstance(unmatched.value, EmailTakenError)
