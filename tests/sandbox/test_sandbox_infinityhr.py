"""InfinityHR: SOAP envelope/SOAPAction checks, sessions, paging, changes, faults.

Contract: docs/vendor-contract.md §2.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from syncd.sandbox import Faults, Sandbox

from .helpers import IHR_NS, NS, XSI_NS, fault_of, parse, soap, soap_headers


async def call(
    sb: Sandbox,
    http: aiohttp.ClientSession,
    method: str,
    request: dict[str, str],
    extra: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    async with http.post(
        sb.infinityhr_url,
        data=body if body is not None else soap(method, request, extra),
        headers=headers or soap_headers(method),
    ) as resp:
        return resp.status, await resp.read()


async def session(sb: Sandbox, http: aiohttp.ClientSession) -> str:
    creds = sb.credentials["infinityhr"]
    status, body = await call(
        sb, http, "Authenticate", {"VendorID": creds["vendor_id"], "VendorPwd": creds["vendor_password"]}
    )
    assert status == 200, body
    sid = parse(body).findtext(".//i:AuthenticateResult/i:SessionID", namespaces=NS)
    assert sid
    return sid


def req(sb: Sandbox, sid: str, **extra: str) -> dict[str, str]:
    creds = sb.credentials["infinityhr"]
    return {"VendorID": creds["vendor_id"], "SessionID": sid, "CompanyID": creds["company_id"], **extra}


async def test_authenticate_result(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    creds = sandbox.credentials["infinityhr"]
    status, body = await call(
        sandbox, http, "Authenticate", {"VendorID": creds["vendor_id"], "VendorPwd": creds["vendor_password"]}
    )
    assert status == 200
    result = parse(body).find(".//i:AuthenticateResponse/i:AuthenticateResult", namespaces=NS)
    assert result is not None
    fields = {el.tag.split("}")[1]: el.text for el in result}
    assert set(fields) == {"SessionID", "IsVendorActive", "SessionStart", "SessionEnd", "SyncDate"}
    assert fields["IsVendorActive"] == "true" and len(fields["SessionID"] or "") == 36
    start = datetime.fromisoformat((fields["SessionStart"] or "").replace("Z", "+00:00"))
    end = datetime.fromisoformat((fields["SessionEnd"] or "").replace("Z", "+00:00"))
    assert end - start == timedelta(minutes=20)


@pytest.mark.parametrize(
    ("vendor", "password", "expected"),
    [
        ("sandbox-vendor", "wrong", "VendorNotFoundException"),
        ("nobody", "sandbox-vendor-pass", "VendorNotFoundException"),
        ("inactive-vendor", "inactive-vendor-pass", "VendorNotActiveException"),
    ],
)
async def test_authenticate_faults(
    sandbox: Sandbox, http: aiohttp.ClientSession, vendor: str, password: str, expected: str
) -> None:
    status, body = await call(sandbox, http, "Authenticate", {"VendorID": vendor, "VendorPwd": password})
    assert (status, fault_of(body)) == (500, ("soap:Client", expected))


async def test_soapaction_and_content_type(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    args = {"VendorID": "sandbox-vendor", "VendorPwd": "sandbox-vendor-pass"}
    for action in (f"{IHR_NS}Authenticate", f'"{IHR_NS}GetDepartments"', None):
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if action is not None:
            headers["SOAPAction"] = action
        status, body = await call(sandbox, http, "Authenticate", args, headers=headers)
        assert (status, fault_of(body)) == (500, ("soap:Client", "ArgumentException")), action
    headers = {**soap_headers("Authenticate"), "Content-Type": "application/json"}
    status, _ = await call(sandbox, http, "Authenticate", args, headers=headers)
    assert status == 415
    async with http.get(sandbox.infinityhr_url) as resp:
        assert resp.status == 405


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<Authenticate xmlns="http://www.infinityhr.com/webservices/"><request><VendorID>&b;</VendorID>'
        b"<VendorPwd>x</VendorPwd></request></Authenticate></soap:Body></soap:Envelope>",
        b"<not-xml",
        b'<Envelope><Body><Authenticate xmlns="http://www.infinityhr.com/webservices/"/></Body></Envelope>',
        # the request children must be in the InfinityHR namespace too
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<Authenticate xmlns="http://www.infinityhr.com/webservices/"><request>'
        b'<VendorID xmlns="">sandbox-vendor</VendorID>'
        b"<VendorPwd>sandbox-vendor-pass</VendorPwd></request></Authenticate></soap:Body></soap:Envelope>",
    ],
)
async def test_hostile_or_malformed_xml_is_a_client_fault(
    sandbox: Sandbox, http: aiohttp.ClientSession, payload: bytes
) -> None:
    status, body = await call(sandbox, http, "Authenticate", {}, body=payload)
    assert (status, fault_of(body)) == (500, ("soap:Client", "ArgumentException"))


async def test_invalid_and_idle_sessions(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    status, body = await call(
        sandbox, http, "GetDepartments", req(sandbox, "00000000-0000-0000-0000-000000000000")
    )
    assert (status, fault_of(body)) == (500, ("soap:Client", "InvalidSessionException"))
    sid = await session(sandbox, http)
    sandbox.infinityhr.idle_timeout = 0.4
    for _ in range(3):  # every successful call resets the idle timer: 3 x 0.25 s > 0.4 s in total
        await asyncio.sleep(0.25)
        assert (await call(sandbox, http, "GetDepartments", req(sandbox, sid)))[0] == 200
    await asyncio.sleep(0.5)
    status, body = await call(sandbox, http, "GetDepartments", req(sandbox, sid))
    assert (status, fault_of(body)) == (500, ("soap:Client", "InvalidSessionException"))


async def test_get_employees_all_paging(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sid = await session(sandbox, http)
    seen: list[str] = []
    page = 1
    while True:
        status, body = await call(
            sandbox, http, "GetEmployeesAll", req(sandbox, sid, PageNumber=str(page), PageSize="50")
        )
        assert status == 200
        result = parse(body).find(".//i:GetEmployeesAllResult", namespaces=NS)
        assert result is not None
        total = int(result.findtext("i:TotalCount", namespaces=NS) or "")
        seen += [
            e.text or "" for e in result.iterfind("i:Employees/i:EmployeeInfo/i:EmployeeID", namespaces=NS)
        ]
        if page * 50 >= total:
            break
        page += 1
    assert seen == sorted(seen) == sorted(sandbox.company.employees)
    assert page == 3  # 120 employees
    first = parse(body).find(".//i:EmployeeInfo", namespaces=NS)
    assert first is not None
    tags = [el.tag.split("}")[1] for el in first]
    assert {"SSN", "PersonalEmail", "EmploymentStatus", "LastModified", "TerminationDate"} <= set(tags)
    nil = [el for el in parse(body).iter() if el.get(f"{{{XSI_NS}}}nil") == "true"]
    assert nil and all(el.text is None for el in nil)


@pytest.mark.parametrize("size", ["0", "1001", "ten"])
async def test_page_size_bounds(sandbox: Sandbox, http: aiohttp.ClientSession, size: str) -> None:
    sid = await session(sandbox, http)
    status, body = await call(sandbox, http, "GetEmployeesAll", req(sandbox, sid, PageSize=size))
    assert (status, fault_of(body)) == (500, ("soap:Client", "ArgumentException"))


async def test_get_departments(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sid = await session(sandbox, http)
    status, body = await call(sandbox, http, "GetDepartments", req(sandbox, sid))
    infos = parse(body).findall(".//i:DepartmentInfo", namespaces=NS)
    assert status == 200 and len(infos) == len(sandbox.company.departments)
    top = [
        i for i in infos if i.find("i:ParentDepartmentCode", namespaces=NS).get(f"{{{XSI_NS}}}nil") == "true"
    ]
    assert top


async def test_get_employee_changes(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    begin = datetime.now(UTC) - timedelta(seconds=1)
    hired = sandbox.mutate("hire")
    sandbox.mutate("transfer", employee_id="E000001", department_code="D0001")
    sandbox.mutate("delete", employee_id="E000002")
    sid = await session(sandbox, http)

    async def changes(**flags: str) -> list[tuple[str, str, bool]]:
        extra = {
            "BeginDate": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "EndDate": (datetime.now(UTC) + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **flags,
        }
        status, body = await call(sandbox, http, "GetEmployeeChanges", req(sandbox, sid, PageSize="2"), extra)
        assert status == 200, body
        out = parse(body).findall(".//i:EmployeeChange", namespaces=NS)
        assert parse(body).findtext(".//i:TotalCount", namespaces=NS) == str(
            len(
                [
                    c
                    for c in sandbox.company.changes
                    if c.change_type in {"Add", "Change", "Delete"}
                    if flags.get("Include" + c.change_type + "s", "true") == "true"
                ]
            )
        )
        return [
            (
                c.findtext("i:EmployeeID", namespaces=NS) or "",
                c.findtext("i:ChangeType", namespaces=NS) or "",
                c.find("i:Employee", namespaces=NS) is not None,
            )
            for c in out
        ]

    assert await changes() == [
        (hired["employee_id"], "Add", True),
        ("E000001", "Change", True),
    ]  # page 1 of 2
    assert await changes(IncludeAdds="false", IncludeChanges="false") == [("E000002", "Delete", False)]
    extra = {"BeginDate": "2030-01-01T00:00:00Z", "EndDate": "2029-01-01T00:00:00Z"}
    status, body = await call(sandbox, http, "GetEmployeeChanges", req(sandbox, sid), extra)
    assert (status, fault_of(body)[1]) == (500, "ArgumentException")


async def test_session_belongs_to_its_vendor(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sid = await session(sandbox, http)
    request = {**req(sandbox, sid), "VendorID": "inactive-vendor"}
    status, body = await call(sandbox, http, "GetDepartments", request)
    assert (status, fault_of(body)[1]) == (500, "InvalidSessionException")
    status, body = await call(sandbox, http, "GetDepartments", {**req(sandbox, sid), "CompanyID": "OTHER"})
    assert (status, fault_of(body)[1]) == (500, "ArgumentException")


async def _page_ids(
    sandbox: Sandbox, http: aiohttp.ClientSession, sid: str, page: int
) -> tuple[int, list[str]]:
    status, body = await call(
        sandbox, http, "GetEmployeesAll", req(sandbox, sid, PageNumber=str(page), PageSize="50")
    )
    assert status == 200
    result = parse(body).find(".//i:GetEmployeesAllResult", namespaces=NS)
    assert result is not None
    ids = [e.text or "" for e in result.iterfind("i:Employees/i:EmployeeInfo/i:EmployeeID", namespaces=NS)]
    return int(result.findtext("i:TotalCount", namespaces=NS) or ""), ids


async def test_paging_faults_short_repeat_and_purge(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    sid = await session(sandbox, http)
    everyone = sorted(sandbox.company.employees)
    sandbox.faults["infinityhr"].update({"page_short": 2, "page_short_by": 7})
    assert await _page_ids(sandbox, http, sid, 2) == (120, everyone[50:93])  # TotalCount unchanged
    assert await _page_ids(sandbox, http, sid, 2) == (120, everyone[50:93])  # until cleared
    sandbox.faults["infinityhr"].update({"page_short": 0, "page_repeat": 2})
    assert await _page_ids(sandbox, http, sid, 2) == (120, everyone[49:99])  # everyone[49] again
    sandbox.faults["infinityhr"].update({"page_repeat": 0, "purge_after_page": 1, "page_fault_count": 1})
    assert await _page_ids(sandbox, http, sid, 1) == (120, everyone[:50])
    assert everyone[0] not in sandbox.company.employees  # purged once page 1 was answered
    assert await _page_ids(sandbox, http, sid, 2) == (119, everyone[51:101])  # everyone[50] never seen
    assert sandbox.faults["infinityhr"].purge_after_page == 0  # the count is spent: switched off
    assert await _page_ids(sandbox, http, sid, 1) == (119, everyone[1:51])


def test_paging_fault_settings_are_validated() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="page_short"):
        faults.update({"page_short": -1})
    faults.update({"page_short": 3, "page_short_by": 45, "page_fault_count": 2})
    assert (faults.page_short, faults.page_short_by, faults.page_fault_count) == (3, 45, 2)
