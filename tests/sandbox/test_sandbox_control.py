"""``/_sandbox`` control routes and the in-process API share the same objects."""

from __future__ import annotations

import aiohttp

from syncd.sandbox import Sandbox

from .helpers import workbox_headers


async def test_index_state_and_request_log(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.control_url}/") as r:
        index = await r.json()
        assert index["urls"]["workbox"] == sandbox.workbox_url
        assert index["credentials"] == sandbox.credentials
    creds = sandbox.credentials["workbox"]
    path = f"/workbox/workbox/openapi/v1/organization/company/{creds['company_id']}/job-grade/G1"
    async with http.post(
        sandbox.base_url + path,
        json={"name": "대리", "sortOrd": 2},
        headers=workbox_headers(creds, "POST", path),
    ) as r:
        assert r.status == 201
    async with http.get(f"{sandbox.control_url}/workbox/state") as r:
        assert await r.json() == {
            "dept": {},
            "user": {},
            "job-grade": {"G1": {"name": "대리", "sortOrd": 2}},
            "job-position": {},
        }
    async with http.get(f"{sandbox.control_url}/requests", params={"vendor": "workbox"}) as r:
        entries = await r.json()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["method"], entry["status"], entry["code"], entry["op"]) == ("POST", 201, None, "job-grade")
    assert entry["path"].endswith("/{companyId}/{kind}/{externalKey}") and entry["raw_path"] == path
    async with http.get(f"{sandbox.control_url}/requests/summary") as r:
        summary = await r.json()
        assert summary["total"] == 1 and summary["by_vendor"] == {"workbox": 1}
        assert summary["counters"][0]["count"] == 1
    async with http.post(f"{sandbox.control_url}/requests/reset") as r:
        assert r.status == 200
    assert len(sandbox.request_log) == 0


async def test_fault_routes(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{sandbox.control_url}/faults/whosoff", json={"error_rate": 0.25, "latency_ms": 3}
    ) as r:
        body = await r.json()
        assert r.status == 200 and body["error_rate"] == 0.25 and body["hang_seconds"] == 60.0
    assert sandbox.faults["whosoff"].latency_ms == 3.0
    async with http.post(f"{sandbox.control_url}/faults/whosoff", json={"error_rate": 3}) as r:
        assert r.status == 400
    async with http.get(f"{sandbox.control_url}/faults/nobody") as r:
        assert r.status == 404
    async with http.post(f"{sandbox.control_url}/workbox/settings", json={"clock_skew": 360}) as r:
        assert r.status == 200 and sandbox.workbox.clock_skew == 360.0 == sandbox.faults["workbox"].clock_skew


async def test_mutate_route(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sandbox.control_url}/hr/mutate", json={"op": "hire", "last_name": "Núñez"}) as r:
        hired = await r.json()
        assert r.status == 200 and hired["op"] == "hire"
    async with http.get(f"{sandbox.control_url}/hr/employees") as r:
        employees = await r.json()
    assert employees[-1]["employee_id"] == hired["employee_id"] and employees[-1]["last_name"] == "Núñez"
    assert {"status", "ssn", "work_email"} <= set(employees[0])
    async with http.post(
        f"{sandbox.control_url}/hr/mutate", json={"op": "terminate", "employee_id": "E999999"}
    ) as r:
        assert r.status == 400
    async with http.post(f"{sandbox.control_url}/hr/mutate", json={"employee_id": "E000001"}) as r:
        assert r.status == 400
    assert sandbox.mutate("dept_rename", department_code="D0001", name="Renamed")["name"] == "Renamed"
    assert len(sandbox.request_log) == 0  # control traffic is not vendor traffic


async def test_per_kind_connection_switches_and_changes_by_hand(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    creds = sandbox.credentials["workbox"]
    path = f"/workbox/workbox/openapi/v1/organization/company/{creds['company_id']}/job-grade/G1"

    async def post_grade() -> tuple[int, dict[str, str]]:
        body = {"name": "대리", "sortOrd": 2}
        async with http.post(
            sandbox.base_url + path, json=body, headers=workbox_headers(creds, "POST", path)
        ) as r:
            return r.status, await r.json(content_type=None) if r.status != 201 else {}

    settings = f"{sandbox.control_url}/workbox/settings"
    async with http.post(settings, json={"connections": {"job-grade": False}}) as r:
        assert r.status == 200 and (await r.json())["connections"]["job-grade"] is False
    status, body = await post_grade()
    assert status == 400 and body["resultCode"] == "E903"  # the console switch is OFF
    async with http.post(settings, json={"connections": {"job-grade": True}}) as r:
        assert r.status == 200
    assert (await post_grade())[0] == 201
    async with http.post(settings, json={"connections": {"nobody": True}}) as r:
        assert r.status == 400

    by_hand = f"{sandbox.control_url}/workbox/by-hand"
    async with http.post(
        by_hand, json={"action": "edit", "kind": "job-grade", "keys": ["G1"], "fields": {"name": "과장"}}
    ) as r:
        assert r.status == 200 and sandbox.workbox_state.job_grade["G1"]["name"] == "과장"
    async with http.post(
        by_hand, json={"action": "edit", "kind": "job-grade", "count": 1, "fields": {"bogus": 1}}
    ) as r:
        assert r.status == 400 and sandbox.workbox_state.job_grade["G1"]["name"] == "과장"
    async with http.post(by_hand, json={"action": "delete", "kind": "job-grade", "count": 5}) as r:
        assert r.status == 200 and (await r.json())["keys"] == ["G1"] and not sandbox.workbox_state.job_grade
    async with http.post(by_hand, json={"action": "delete", "kind": "job-grade", "keys": ["G1"]}) as r:
        assert r.status == 400  # nothing left to delete
