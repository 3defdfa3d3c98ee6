"""WORKBOX: gateway signing both ways, the test vectors, body and referential rules.

Contract: docs/vendor-contract.md §3.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest

from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.sandbox.workbox import verify_signature

from .helpers import ncp_signature, workbox_headers

VECTOR = {
    "secret": "TESTSECRETKEY0123456789abcdefghijklmnopqr",
    "ts": "1505290625682",
    "api_key": "cstWXuw4wqp1EfuqDwZeMz5fh0epaTykRRRuy5Ra",
    "access_key": "D78BB444D6D3C84CA38A",
    "uri": "/workbox/workbox/openapi/v1/organization/company/"
    "578c7009-bdad-4493-9835-72302cf988c6/dept/0000002",
    "v1": "M5SwyPEYpYJwnUsfoEks2vOHHSyWwd7pmSoe19D7Sv8=",
    "v2": "Iiyn6Q1IQBi/cinsgcUH12SlVDXY0PVRyU1YKYShz20=",
}
DEPT = {"name": "Engineering", "sortOrd": "1", "uprDeptExternalKey": "#"}


class WB:
    def __init__(self, sb: Sandbox, http: aiohttp.ClientSession, variant: str = "v1") -> None:
        self.sb, self.http, self.variant = sb, http, variant
        self.creds = sb.credentials["workbox"]

    def path(self, kind: str, key: str, company: str | None = None) -> str:
        base = self.sb.workbox_url.split("://", 1)[1].split("/", 1)[1]
        return f"/{base}/organization/company/{company or self.creds['company_id']}/{kind}/{key}"

    async def send(
        self,
        method: str,
        kind: str,
        key: str,
        body: Any = None,
        *,
        company: str | None = None,
        ts: int | None = None,
        sign_path: str | None = None,
    ) -> tuple[int, dict[str, Any], Any]:
        path = self.path(kind, key, company)
        headers = workbox_headers(self.creds, method, sign_path or path, variant=self.variant, ts=ts)
        async with self.http.request(method, self.sb.base_url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None), resp.headers


@pytest.fixture
def wb(sandbox: Sandbox, http: aiohttp.ClientSession) -> WB:
    return WB(sandbox, http)


def test_contract_vectors_verify() -> None:
    v = VECTOR
    args = ("POST", v["uri"], v["ts"], v["api_key"], v["access_key"])
    assert verify_signature("v1", v["secret"], v["v1"], *args)
    assert verify_signature("v2", v["secret"], v["v2"], *args)
    assert not verify_signature("v1", v["secret"], v["v2"], *args)
    assert not verify_signature("v2", v["secret"], v["v1"], *args)
    # the tests' own signer agrees with the vector, so the HTTP tests below sign correctly
    assert ncp_signature("v1", v["secret"], *args) == v["v1"]
    assert ncp_signature("v2", v["secret"], *args) == v["v2"]


@pytest.mark.parametrize("configured", ["v1", "v2"])
async def test_vectors_over_http(configured: str, http: aiohttp.ClientSession) -> None:
    v = VECTOR
    async with run_sandbox(SandboxOptions(employees=5, port=0, signature=configured)) as sb:
        sb.workbox.api_key, sb.workbox.access_key, sb.workbox.secret_key = (
            v["api_key"],
            v["access_key"],
            v["secret"],
        )
        sb.workbox.clock_skew = int(v["ts"]) / 1000 - time.time()  # the gateway clock is the vector's instant
        for variant, header in (
            ("v1", "x-ncp-apigw-signature-v1"),
            ("v2", "x-ncp-apigw-signature-v2"),
            ("v2", "x-ncp-apigw-signature-v1"),
        ):  # Python/Go SDKs reuse the -v1 name
            headers = {
                "x-ncp-apigw-timestamp": v["ts"],
                "x-ncp-apigw-api-key": v["api_key"],
                "x-ncp-iam-access-key": v["access_key"],
                header: v[variant],
            }
            async with http.post(sb.base_url + v["uri"], json=DEPT, headers=headers) as resp:
                body = await resp.json()
                if variant == configured:
                    assert resp.status == 201, body
                    sb.workbox_state.clear()
                else:
                    assert (resp.status, body["error"]["errorCode"]) == (401, "200"), header


async def test_create_update_delete_flow(sandbox: Sandbox, wb: WB) -> None:
    assert (await wb.send("POST", "dept", "D1", DEPT))[0] == 201
    assert (
        await wb.send(
            "POST", "dept", "D1.1", {**DEPT, "uprDeptExternalKey": "D1", "i18nNames": {"ko_KR": "개발팀"}}
        )
    )[0] == 201
    assert (await wb.send("POST", "job-grade", "G1", {"name": "과장", "sortOrd": 3}))[0] == 201
    assert (await wb.send("POST", "job-position", "P1", {"name": "Lead", "sortOrd": 1}))[0] == 201
    user = {
        "name": "김 민준",
        "emailAddr": "minjun.kim@acme.example",
        "deptExternalKey": "D1.1",
        "gradeExternalKey": "G1",
        "positionExternalKey": "P1",
        "telNo": "+82-2-123-4567",
    }
    assert (await wb.send("POST", "user", "E000001", user))[0] == 201
    status, _, headers = await wb.send("PUT", "user", "E000001", {**user, "deptExternalKey": "D1"})
    assert status == 200
    assert abs(parsedate_to_datetime(headers["Date"]).timestamp() - time.time()) < 5
    assert sandbox.workbox_state.user["E000001"]["deptExternalKey"] == "D1"
    assert (await wb.send("DELETE", "user", "E000001"))[0] == 200
    assert (await wb.send("DELETE", "dept", "D1.1"))[0] == 200
    assert (await wb.send("DELETE", "dept", "D1"))[0] == 200
    assert sandbox.workbox_state.to_json() == {
        "dept": {},
        "user": {},
        "job-grade": {"G1": {"name": "과장", "sortOrd": 3}},
        "job-position": {"P1": {"name": "Lead", "sortOrd": 1}},
    }


async def test_gateway_rejections(sandbox: Sandbox, wb: WB) -> None:
    stale = int((time.time() - 360) * 1000)
    status, body, headers = await wb.send("POST", "dept", "D1", DEPT, ts=stale)
    assert (status, body["error"]["errorCode"], body["error"]["message"]) == (
        401,
        "200",
        "Authentication Failed",
    )
    assert "Date" in headers
    future = int((time.time() + 360) * 1000)
    assert (await wb.send("POST", "dept", "D1", DEPT, ts=future))[0] == 401
    # signature computed over a different path (base path left out)
    status, body, _ = await wb.send(
        "POST",
        "dept",
        "D1",
        DEPT,
        sign_path="/organization/company/578c7009-bdad-4493-9835-72302cf988c6/dept/D1",
    )
    assert status == 401
    # the query string is part of the signed URI
    path = wb.path("dept", "D1") + "?lang=ko"
    headers = workbox_headers(wb.creds, "POST", wb.path("dept", "D1"))
    async with wb.http.post(sandbox.base_url + path, json=DEPT, headers=headers) as resp:
        assert resp.status == 401
    headers = workbox_headers(wb.creds, "POST", path)
    async with wb.http.post(sandbox.base_url + path, json=DEPT, headers=headers) as resp:
        assert resp.status == 201
    wrong = dict(wb.creds, api_key="other-api-key")
    headers = workbox_headers(wrong, "PUT", wb.path("dept", "D1"))
    async with wb.http.put(sandbox.base_url + wb.path("dept", "D1"), json=DEPT, headers=headers) as resp:
        assert resp.status == 401
    async with wb.http.put(sandbox.base_url + wb.path("dept", "D1"), json=DEPT) as resp:  # unsigned
        assert resp.status == 401
    assert sandbox.request_log.count(vendor="workbox", status=401) == 6


async def test_clock_skew(sandbox: Sandbox, wb: WB) -> None:
    sandbox.workbox.clock_skew = 360.0
    status, _, headers = await wb.send("POST", "dept", "D1", DEPT)
    assert status == 401
    assert parsedate_to_datetime(headers["Date"]).timestamp() - time.time() > 300
    assert (await wb.send("POST", "dept", "D1", DEPT, ts=int((time.time() + 360) * 1000)))[0] == 201


async def test_get_is_405(sandbox: Sandbox, wb: WB) -> None:
    async with wb.http.get(
        sandbox.base_url + wb.path("dept", "D1"),
        headers=workbox_headers(wb.creds, "GET", wb.path("dept", "D1")),
    ) as resp:
        assert resp.status == 405 and "Date" in resp.headers


@pytest.mark.parametrize(
    ("kind", "key", "body", "company", "code"),
    [
        ("dept", "D1", DEPT, "00000000-0000-0000-0000-000000000000", "E900"),
        ("dept", "bad%20key", DEPT, None, "E900"),
        ("dept", "k%C3%A9y", DEPT, None, "E900"),
        ("dept", "K" * 37, DEPT, None, "E900"),
        ("team", "D1", DEPT, None, "E900"),
        ("dept", "D1", {**DEPT, "color": "red"}, None, "E902"),
        ("dept", "D1", {"name": "x", "sortOrd": "1"}, None, "E902"),
        ("dept", "D1", {**DEPT, "name": "n" * 101}, None, "E902"),
        ("dept", "D1", {**DEPT, "sortOrd": 1}, None, "E902"),
        ("dept", "D1", {**DEPT, "uprDeptExternalKey": "NOPE"}, None, "E902"),
        ("job-grade", "G1", {"name": "x", "sortOrd": "1"}, None, "E902"),
        ("user", "U1", {"name": "x"}, None, "E902"),
        ("user", "U1", {"name": "x", "emailAddr": "x@acme.example", "deptExternalKey": "NOPE"}, None, "E902"),
        ("user", "U1", {"name": "x", "emailAddr": "x@acme.example", "telNo": "1" * 31}, None, "E902"),
        ("user", "U1", "not an object", None, "E902"),
    ],
)
async def test_path_and_body_errors(
    wb: WB, kind: str, key: str, body: Any, company: str | None, code: str
) -> None:
    status, result, _ = await wb.send("POST", kind, key, body, company=company)
    assert (status, result["resultCode"]) == (400, code), result


async def test_existence_and_referential_rules(sandbox: Sandbox, wb: WB) -> None:
    assert (await wb.send("POST", "dept", "D1", DEPT))[0] == 201
    status, body, _ = await wb.send("POST", "dept", "D1", DEPT)
    assert (status, body["resultCode"]) == (400, "E904") and "already exists" in body["resultMessage"]
    status, body, _ = await wb.send("PUT", "dept", "D9", DEPT)
    assert (status, body["resultCode"]) == (400, "E904") and "not found" in body["resultMessage"]
    status, body, _ = await wb.send("DELETE", "user", "U9")
    assert (status, body["resultCode"]) == (400, "E904") and "not found" in body["resultMessage"]
    assert (await wb.send("POST", "dept", "D2", {**DEPT, "uprDeptExternalKey": "D1"}))[0] == 201
    status, body, _ = await wb.send("PUT", "dept", "D1", {**DEPT, "uprDeptExternalKey": "D2"})  # cycle
    assert (status, body["resultCode"]) == (400, "E902")
    assert (await wb.send("POST", "job-grade", "G1", {"name": "사원", "sortOrd": 1}))[0] == 201
    user = {
        "name": "Zoë Müller",
        "emailAddr": "Zoe.Muller@acme.example",
        "deptExternalKey": "D2",
        "gradeExternalKey": "G1",
    }
    assert (await wb.send("POST", "user", "U1", user))[0] == 201
    status, body, _ = await wb.send("POST", "user", "U2", {**user, "emailAddr": "zoe.muller@ACME.example"})
    assert (status, body["resultCode"]) == (400, "E902")  # duplicate e-mail, case-insensitive
    assert (await wb.send("PUT", "user", "U1", {**user, "emailAddr": "ZOE.MULLER@acme.example"}))[0] == 200
    for kind, key in (("dept", "D2"), ("dept", "D1"), ("job-grade", "G1")):
        status, body, _ = await wb.send("DELETE", kind, key)  # members / children / references remain
        assert (status, body["resultCode"]) == (400, "E902"), (kind, key)
    assert (await wb.send("DELETE", "user", "U1"))[0] == 200
    assert (await wb.send("POST", "user", "U2", {**user, "emailAddr": "zoe.muller@ACME.example"}))[0] == 201


async def test_console_switches(sandbox: Sandbox, wb: WB) -> None:
    sandbox.workbox.api_enabled = False
    assert (await wb.send("POST", "dept", "D1", DEPT))[1]["resultCode"] == "E901"
    sandbox.workbox.api_enabled = True
    sandbox.workbox.basic_settings = False
    assert (await wb.send("POST", "dept", "D1", DEPT))[1]["resultCode"] == "E903"
    assert sandbox.workbox_state.dept == {}
