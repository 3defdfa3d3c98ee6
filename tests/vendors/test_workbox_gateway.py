"""The NAVER Cloud API Gateway's error table (docs/vendor-contract.md §3.1), code by code, against the
sandbox: what the WORKBOX client makes of each answer, and how many requests it sends for it."""

from __future__ import annotations

import aiohttp
import pytest

from syncd.errors import QuotaExceededError, RejectedError, VendorConfigError
from syncd.sandbox import Sandbox
from syncd.vendors import WorkboxClient

from .conftest import workbox_settings

DEPT = {"name": "Engineering", "sortOrd": "1", "uprDeptExternalKey": "#"}


def _inject(sb: Sandbox, code: str, count: int = 1) -> None:
    sb.faults["workbox"].update({"gateway_error": code, "gateway_error_count": count})


async def _create(sb: Sandbox, http: aiohttp.ClientSession) -> None:
    await WorkboxClient(http, workbox_settings(sb)).create("dept", "D-1", DEPT)


async def test_200_authentication_failed_names_the_keys_and_signature(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    _inject(sandbox, "200")
    with pytest.raises(VendorConfigError, match=r"workbox\.secret_key.*workbox\.signature") as caught:
        await _create(sandbox, http)
    assert caught.value.code == "200"
    assert sandbox.request_log.count(vendor="workbox") == 1


async def test_210_permission_denied_is_configuration_not_a_bad_signature(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    _inject(sandbox, "210")
    with pytest.raises(VendorConfigError, match="Permission Denied") as caught:
        await _create(sandbox, http)
    assert caught.value.code == "210"
    assert "signature" not in str(caught.value)  # the keys are right; the permission is missing
    assert "API key" in str(caught.value)
    assert sandbox.request_log.count(vendor="workbox") == 1


async def test_400_quota_exceeded_stops_without_retrying(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    _inject(sandbox, "400", count=5)
    with pytest.raises(QuotaExceededError, match="Quota Exceeded") as caught:
        await _create(sandbox, http)
    assert caught.value.code == "400"
    assert sandbox.request_log.count(vendor="workbox") == 1  # not hammered


@pytest.mark.parametrize("code", ["410", "420"])
async def test_throttle_and_rate_limited_back_off_without_retry_after(
    sandbox: Sandbox, http: aiohttp.ClientSession, code: str
) -> None:
    _inject(sandbox, code, count=3)
    await _create(sandbox, http)  # three 429s (no Retry-After), then created
    assert sandbox.request_log.count(vendor="workbox", status=429) == 3
    assert sandbox.request_log.count(vendor="workbox", status=201) == 1


async def test_430_request_entity_too_large_fails_that_operation_alone(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    _inject(sandbox, "430")
    with pytest.raises(RejectedError, match="Request Entity Too Large") as caught:
        await _create(sandbox, http)
    assert caught.value.code == "430" and not isinstance(caught.value, VendorConfigError)
    assert sandbox.request_log.count(vendor="workbox") == 1
    await _create(sandbox, http)  # the next operation goes through


@pytest.mark.parametrize("code", ["500", "510", "900"])
async def test_endpoint_errors_are_transient(
    sandbox: Sandbox, http: aiohttp.ClientSession, code: str
) -> None:
    _inject(sandbox, code, count=2)
    await _create(sandbox, http)
    assert sandbox.request_log.count(vendor="workbox", code=code) == 2
    assert sandbox.request_log.count(vendor="workbox", status=201) == 1
