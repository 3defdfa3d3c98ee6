"""Fault injection: each kind at least once, vendor-shaped errors, determinism, control paths exempt."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from syncd.sandbox import Faults, Sandbox, SandboxOptions, run_sandbox

from .helpers import NS, credentials_body, data_headers, fault_of, parse, soap, soap_headers, workbox_headers

DEPT = {"name": "Engineering", "sortOrd": "1", "uprDeptExternalKey": "#"}


async def whosoff_token(sb: Sandbox, http: aiohttp.ClientSession) -> str:
    creds = sb.credentials["whosoff"]
    async with http.post(
        f"{sb.whosoff_url}/v4/authenticate/with-credentials",
        json=credentials_body(creds),
        headers={"app-id": creds["app_id"]},
    ) as resp:
        assert resp.status == 200
        return str((await resp.json())["Data"][0]["token"]["access_token"])


async def ihr_session(sb: Sandbox, http: aiohttp.ClientSession) -> str:
    creds = sb.credentials["infinityhr"]
    async with http.post(
        sb.infinityhr_url,
        headers=soap_headers("Authenticate"),
        data=soap("Authenticate", {"VendorID": creds["vendor_id"], "VendorPwd": creds["vendor_password"]}),
    ) as resp:
        return parse(await resp.read()).findtext(".//i:SessionID", namespaces=NS) or ""


async def ihr_departments(sb: Sandbox, http: aiohttp.ClientSession, sid: str) -> tuple[int, bytes]:
    creds = sb.credentials["infinityhr"]
    async with http.post(
        sb.infinityhr_url,
        headers=soap_headers("GetDepartments"),
        data=soap("GetDepartments", {"VendorID": creds["vendor_id"], "SessionID": sid}),
    ) as resp:
        return resp.status, await resp.read()


async def wb_post(
    sb: Sandbox, http: aiohttp.ClientSession, key: str
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    creds = sb.credentials["workbox"]
    path = f"/workbox/workbox/openapi/v1/organization/company/{creds['company_id']}/dept/{key}"
    async with http.post(sb.base_url + path, json=DEPT, headers=workbox_headers(creds, "POST", path)) as resp:
        return resp.status, await resp.read(), resp


async def test_latency(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sandbox.faults["workbox"].latency_ms = 200
    start = time.monotonic()
    assert (await wb_post(sandbox, http, "D1"))[0] == 201
    assert time.monotonic() - start >= 0.2


async def test_injected_errors_have_each_vendors_shape(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    tok = await whosoff_token(sandbox, http)
    for vendor in ("whosoff", "infinityhr", "workbox"):
        sandbox.faults[vendor].error_rate = 1.0
    async with http.get(
        f"{sandbox.whosoff_url}/v4/department/retrieve/",
        headers=data_headers(sandbox.credentials["whosoff"], tok),
    ) as resp:
        assert resp.status == 500 and (await resp.json())["Errors"]
    sandbox.faults["infinityhr"].error_rate = 0.0
    sandbox.faults["infinityhr"].update({"error_rate": 1.0})
    creds = sandbox.credentials["infinityhr"]
    async with http.post(
        sandbox.infinityhr_url,
        headers=soap_headers("Authenticate"),
        data=soap("Authenticate", {"VendorID": creds["vendor_id"], "VendorPwd": creds["vendor_password"]}),
    ) as resp:
        assert (resp.status, fault_of(await resp.read())) == (500, ("soap:Server", None))
    status, body, _ = await wb_post(sandbox, http, "D1")
    assert (status, b"E1001" in body) == (500, True)
    assert sandbox.workbox_state.dept == {}  # the write did not land
    sandbox.faults["workbox"].error_status = 503
    assert (await wb_post(sandbox, http, "D1"))[0] == 503


async def test_after_handler_error_means_the_write_landed(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.faults["workbox"].update({"error_rate": 1.0, "after_handler": True, "error_status": 504})
    assert (await wb_post(sandbox, http, "D1"))[0] == 504
    assert "D1" in sandbox.workbox_state.dept
    sandbox.faults["workbox"].error_rate = 0.0
    status, body, _ = await wb_post(sandbox, http, "D1")
    assert status == 400 and b"already exists" in body


async def test_rate_limit_burst(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sandbox.faults["workbox"].update({"rate_limit": 2, "retry_after": 7})
    for _ in range(2):
        status, body, resp = await wb_post(sandbox, http, "D1")
        assert (status, resp.headers["Retry-After"], b'"420"' in body) == (429, "7", True)
        assert "Date" in resp.headers
    assert (await wb_post(sandbox, http, "D1"))[0] == 201
    sid = await ihr_session(sandbox, http)
    sandbox.faults["infinityhr"].rate_limit = 1
    assert (await ihr_departments(sandbox, http, sid))[0] == 429
    assert (await ihr_departments(sandbox, http, sid))[0] == 200


async def test_hang_times_the_client_out(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sid = await ihr_session(sandbox, http)
    sandbox.faults["infinityhr"].update({"hang_rate": 1.0, "hang_seconds": 30})
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.5):
            await ihr_departments(sandbox, http, sid)
    assert sandbox.request_log.count(vendor="infinityhr", code="HANG") == 1
    # stopping the sandbox ends the hang at once (teardown of this test stays fast)


async def test_drop(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sandbox.faults["workbox"].drop_rate = 1.0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await wb_post(sandbox, http, "D1")
    assert sandbox.request_log.count(vendor="workbox", code="DROP") >= 1


async def test_corrupt_truncated_gzip_then_recovers(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    tok = await whosoff_token(sandbox, http)
    sandbox.faults["whosoff"].corrupt = "truncated_gzip"
    url = f"{sandbox.whosoff_url}/v4/department/retrieve/"
    headers = data_headers(sandbox.credentials["whosoff"], tok)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(url, headers=headers) as resp:
            await resp.read()
    async with http.get(url, headers=headers) as resp:  # one-shot: the next response is fine
        assert resp.status == 200 and (await resp.json())["Data"]


async def test_corrupt_xml_kinds(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sid = await ihr_session(sandbox, http)  # Authenticate is never corrupted: only data responses are
    sandbox.faults["infinityhr"].update({"corrupt": "malformed", "corrupt_count": 2})
    for _ in range(2):
        status, body = await ihr_departments(sandbox, http, sid)
        assert status == 200
        with pytest.raises(Exception, match=r"(?i)premature|not closed|expected|EndTag|Couldn't find end"):
            parse(body)
    sandbox.faults["infinityhr"].corrupt = "entity_expansion"
    status, body = await ihr_departments(sandbox, http, sid)
    assert status == 200 and b"<!DOCTYPE" in body and b"<!ENTITY lol9" in body
    sandbox.faults["infinityhr"].corrupt = "truncated_gzip"
    with pytest.raises(aiohttp.ClientPayloadError):
        await ihr_departments(sandbox, http, sid)
    assert sandbox.faults["infinityhr"].corrupt is None
    status, body = await ihr_departments(sandbox, http, sid)
    assert status == 200 and parse(body) is not None


def test_fault_settings_validation() -> None:
    faults = Faults()
    for bad in (
        {"error_rate": 1.5},
        {"nope": 1},
        {"corrupt": "garbage"},
        {"rate_limit": -1},
        {"error_status": 404},
        {"after_handler": 1},
    ):
        with pytest.raises(ValueError):
            faults.update(bad)
    assert faults == Faults()
    faults.update({"latency_ms": 5, "corrupt": "malformed", "clock_skew": -30})
    assert (faults.latency_ms, faults.corrupt, faults.clock_skew) == (5.0, "malformed", -30.0)


async def test_faults_are_deterministic_and_settable_at_start(http: aiohttp.ClientSession) -> None:
    async def run() -> list[int]:
        opts = SandboxOptions(employees=5, port=0, seed=3, faults={"workbox": Faults(error_rate=0.5)})
        async with run_sandbox(opts) as sb:
            return [(await wb_post(sb, http, f"D{i}"))[0] for i in range(12)]

    first, second = await run(), await run()
    assert first == second and {201, 500} <= set(first)


async def test_faults_never_touch_control_routes(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    for vendor in ("whosoff", "infinityhr", "workbox"):
        sandbox.faults[vendor].update({"error_rate": 1.0, "drop_rate": 1.0, "rate_limit": 5})
    async with http.get(f"{sandbox.control_url}/workbox/state") as resp:
        assert resp.status == 200
    async with http.get(f"{sandbox.control_url}/requests") as resp:
        assert resp.status == 200 and await resp.json() == []
