"""The real-vendors issue: the sandbox speaks another dialect; syncd adapts by configuration alone.

For each difference: the default configuration fails clearly and deletes nothing (or, where the default
is ``auto``, simply works), and with the configuration line set the sync reaches the exact directory
and the next run sends nothing.  On SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog

from syncd.db import records
from syncd.doctor import run_doctor
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.sandbox import Sandbox, SandboxOptions, run_sandbox
from syncd.sandbox.dialect import (
    DEFAULT_FIELDS,
    Dialect,
    DialectError,
    InfinityHRDialect,
    WhosOffDialect,
    WorkboxDialect,
    load_dialect,
)
from syncd.states import RunResult
from tests.support.campaigns.common import dump_tables
from tests.support.config import merge_config, settings_for
from tests.support.oracle import expected_directory
from tests.support.workbox import workbox_requests, workbox_state

ROOT = Path(__file__).parents[2]


async def _sync(sb: Sandbox, db_url: str, **sections: Any) -> tuple[Any, Any]:
    """Two cycles with this configuration: (first report, second report)."""
    async with SyncContext.open(settings_for(sb, db_url, **sections)) as ctx:
        first = await run_cycle(ctx, trigger="test")
        second = await run_cycle(ctx, trigger="test")
    return first, second


async def _converges(sb: Sandbox, db_url: str, **sections: Any) -> None:
    first, second = await _sync(sb, db_url, **sections)
    assert first.result is RunResult.SUCCESS, first.message()
    assert workbox_state(sb) == expected_directory(sb.company)
    assert second.ops == [] and second.result is RunResult.SUCCESS


async def test_whosoff_email_address_is_read_by_default_and_by_name(db_url: str, tmp_path: Path) -> None:
    dialect = Dialect(whosoff=WhosOffDialect(email_field="email_address"))
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        await _converges(sb, db_url)  # email_field = "auto": the first key present
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        named = f"sqlite+aiosqlite:///{tmp_path / 'named.db'}"
        await _converges(sb, named, whosoff={"email_field": "email_address"})


async def test_whosoff_email_field_set_to_the_wrong_key_matches_by_staff_code_only(tmp_path: Path) -> None:
    """Set wrong, no e-mail arrives: WhosOff-only people cannot become members (quarantined
    missing_email) and nothing is deleted."""
    dialect = Dialect(whosoff=WhosOffDialect(email_field="email_address"))
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        first, _ = await _sync(
            sb, f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
            whosoff={"email_field": "email_contact"}, sync={"include_whosoff_only": True},
        )  # fmt: skip
        assert workbox_requests(sb, method="DELETE") == 0
        assert any(r.reason_code == "missing_email" for r in first.rejects), first.rejects


async def test_workbox_accepting_only_v2_fails_clearly_then_converges_with_signature_v2(db_url: str) -> None:
    dialect = Dialect(workbox=WorkboxDialect(signature="v2"))
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        first, _ = await _sync(sb, db_url, workbox={"signature": "v1"})  # the contract's default
        assert first.result is RunResult.FAILED and "workbox.signature" in (first.error or ""), first.error
        assert workbox_requests(sb, method="DELETE") == 0
        assert workbox_requests(sb, status=201) == 0
        await _converges(sb, db_url, workbox={"signature": "v2"})


async def test_a_kind_whose_connection_is_off_stops_pushing_with_the_console_switch_named(
    tmp_path: Path,
) -> None:
    dialect = Dialect(workbox=WorkboxDialect(connections_off=("job-position",)))
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        first, _ = await _sync(sb, url)
        assert first.result is RunResult.FAILED
        assert "Connect organisation" in (first.error or "") and "E903" in (first.error or ""), first.error
        assert workbox_requests(sb, method="DELETE") == 0
        sb.workbox.connections_off.clear()  # the admin switches it ON
        await _converges(sb, url)


def test_the_shipped_dialects_load_and_a_bad_one_is_named(tmp_path: Path) -> None:
    shipped = sorted((ROOT / "config" / "dialects").glob("*.toml"))
    assert len(shipped) >= 2
    for path in shipped:
        assert load_dialect(path) != Dialect(), path  # each differs from the contract somewhere
    bad = tmp_path / "bad.toml"
    bad.write_text('[workbox]\nsignature = "v3"\n')
    with pytest.raises(DialectError, match=r"bad\.toml: workbox\.signature must be v1 or v2"):
        load_dialect(bad)


async def test_whosoff_root_with_the_version_in_it_works_with_api_path_empty(tmp_path: Path) -> None:
    """WhosOff's samples put /v4/ in the root: url = …/v4 with api_path = "" reaches the same routes."""
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        await _converges(sb, url, whosoff={"url": sb.whosoff_url + "/v4/", "api_path": ""})


# ------------------------------------------------------------------------------------ InfinityHR

OTHER_NS = "urn:example:hr:v2/"
RENAMED = {"authenticate": "Login", "employees": "ListEmployees", "departments": "ListDepartments"}
CASES = {
    "namespace": (
        {"namespace": OTHER_NS},
        {"namespace": OTHER_NS},
    ),
    "soap_action": (
        {"soap_action": "urn:example:action:{method}"},
        {"soap_action": "urn:example:action:{method}"},
    ),
    "methods": (
        {"methods": RENAMED},
        {"methods": RENAMED},
    ),
    "fields": (
        {"fields": {**DEFAULT_FIELDS, "employee_id": "EmpNo", "work_email": "EMail", "ssn": "SocialSecurity",
                    "employment_status": "Status", "department_code": "Dept"}},
        {"fields": {"employee_id": "EmpNo", "work_email": "EMail", "employment_status": "Status",
                    "department_code": "Dept"}},
    ),
    "status_values": (
        {"status_values": {"active": "A", "leave": "L", "terminated": "T"}},
        {"status_values": {"active": ["A"], "leave": ["L"], "terminated": ["T"]}},
    ),
    "no_departments_method": (
        {"departments_method": False},
        {"departments_from": "employees"},
    ),
}  # fmt: skip


async def _doctored(sb: Sandbox, db_url: str, vendor: str) -> dict[str, Any]:
    """The configuration ``syncd doctor`` leads to: run it, apply the lines it prints, until it passes."""
    config: dict[str, Any] = {}
    for _ in range(4):
        checks = await run_doctor(settings_for(sb, db_url, **config), [vendor])
        if all(c.ok for c in checks):
            return config
        fixes = [c.fix for c in checks if c.fix]
        assert fixes, [c.to_json() for c in checks if not c.ok]  # a failure doctor cannot fix
        for fix in fixes:
            merge_config(config, fix)
    raise AssertionError(f"doctor still fails after four rounds: {config}")


@pytest.mark.parametrize("case", sorted(CASES))
async def test_infinityhr_dialect_fails_clearly_by_default_and_converges_as_doctor_says(
    case: str, tmp_path: Path
) -> None:
    served, configured = CASES[case]
    dialect = Dialect(infinityhr=InfinityHRDialect(**{**InfinityHRDialect().__dict__, **served}))
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        first, _ = await _sync(sb, url)  # the contract's dialect
        assert first.result in (RunResult.STALE, RunResult.FAILED), (case, first.message())
        assert workbox_requests(sb, method="DELETE") == 0 and workbox_requests(sb, method="POST") == 0
        assert "infinityhr" in first.message(), first.message()
        fixed = await _doctored(sb, url, "infinityhr")
        for key, value in configured.items():  # doctor found the very difference the service has
            got = fixed["infinityhr"][key]
            assert (
                got == value
                or (isinstance(value, dict) and value.items() <= got.items())
                or (key == "status_values" and all(v[0] in got[k] for k, v in value.items()))
            ), (key, got, value)
        await _converges(sb, url, **fixed)


#: the syncd configuration for config/dialects/combined.toml
COMBINED_CONFIG: dict[str, Any] = {
    "infinityhr": {
        "namespace": "urn:acme:hr/",
        "soap_action": "urn:acme:hr/action/{method}",
        "departments_from": "employees",
        "methods": {"authenticate": "Login", "employees": "ListEmployees"},
        "fields": {
            "employee_id": "EmpNo", "work_email": "EMail", "employment_status": "Status",
            "department_code": "Dept", "department_name": "DeptName", "parent_department_code": "ParentDept",
        },
        "status_values": {"active": ["A"], "leave": ["L"], "terminated": ["T"]},
    },
    "whosoff": {"email_field": "email_address"},
    "workbox": {"signature": "v2"},
}  # fmt: skip


async def test_the_combined_dialect_end_to_end(db_url: str, tmp_path: Path) -> None:
    """Every difference at once: by default nothing is sent, configured it converges, on both databases;
    the SSN and personal e-mail, under other element names, reach neither the database nor a log."""
    dialect = load_dialect(ROOT / "config" / "dialects" / "combined.toml")
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        first, _ = await _sync(sb, f"sqlite+aiosqlite:///{tmp_path / 'default.db'}")
        assert first.result is RunResult.STALE and workbox_requests(sb) == 0, first.message()
        with structlog.testing.capture_logs() as logs:
            await _converges(sb, db_url, **COMBINED_CONFIG)
        private = [v for e in sb.company.employees.values() for v in (e.ssn, e.personal_email) if v]
        text = repr(logs)
        assert private and not [v for v in private if v in text]
        dump = await dump_tables(db_url)
        assert not [v for v in private if v in dump]


async def test_member_defaults_ride_on_every_member_and_a_change_updates_them(tmp_path: Path) -> None:
    """``workbox.member_defaults`` (localeTypeCd, tmznTypeCd: documented optional member fields)."""
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        seoul = {"member_defaults": {"localeTypeCd": "ko_KR", "tmznTypeCd": "Asia/Seoul"}}
        first, second = await _sync(sb, url, workbox=seoul)
        assert first.result is RunResult.SUCCESS and second.ops == []
        users = [body for (kind, _), body in workbox_state(sb).items() if kind == "user"]
        assert users and all(u["localeTypeCd"] == "ko_KR" and u["tmznTypeCd"] == "Asia/Seoul" for u in users)
        tokyo = {"member_defaults": {"localeTypeCd": "ko_KR", "tmznTypeCd": "Asia/Tokyo"}}
        changed, _ = await _sync(sb, url, workbox=tokyo)
        assert {(op.kind, op.action) for op in changed.ops} == {("user", "update")}
        assert len(changed.ops) == len(users)
        assert all(b["tmznTypeCd"] == "Asia/Tokyo" for (k, _), b in workbox_state(sb).items() if k == "user")


async def test_signature_auto_finds_the_variant_once_and_remembers_it(db_url: str) -> None:
    """``workbox.signature = "auto"`` against a v2-only gateway: the first request is refused as v1 and
    retried as v2; v2 is kept in the staging database, so the next process signs v2 from the start."""
    dialect = Dialect(workbox=WorkboxDialect(signature="v2"))
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        with structlog.testing.capture_logs() as logs:
            await _converges(sb, db_url, workbox={"signature": "auto"})
        assert [e["signature"] for e in logs if e["event"] == "workbox.signature_detected"] == ["v2"]
        assert workbox_requests(sb, status=401) == 1  # one refused request, then every one as v2
        sb.mutate("hire")
        async with SyncContext.open(settings_for(sb, db_url, workbox={"signature": "auto"})) as ctx:
            assert ctx.workbox.variant == "v2"
            report = await run_cycle(ctx, trigger="test")
        assert report.result is RunResult.SUCCESS and workbox_requests(sb, status=401) == 1


async def test_signature_auto_with_wrong_keys_says_so(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=20, seed=6, port=0)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        settings = settings_for(sb, url, workbox={"signature": "auto", "secret_key": "sbx-not-the-secret"})
        async with SyncContext.open(settings) as ctx:
            first = await run_cycle(ctx, trigger="test")
            assert await records.vendor_fact(ctx.sessions, "workbox", "signature") is None
        assert first.result is RunResult.FAILED and "workbox.secret_key" in (first.error or ""), first.error
        # the first request tries each variant once; the others in flight meet the same refusal once
        assert workbox_requests(sb, status=401) <= 2 + settings.workbox.max_concurrency


async def test_a_status_value_that_turns_unmapped_freezes_the_member_and_deletes_no_one(
    tmp_path: Path,
) -> None:
    """An unmapped EmploymentStatus is an unreadable record: quarantined and frozen, never "not a member"."""
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0)) as sb:
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        await _converges(sb, url)
        emp = next(e for e in sb.company.employee_list() if e.status == "Active")
        emp.status = "Suspended"  # what a service might start sending one day
        report, _ = await _sync(sb, url)
        assert workbox_requests(sb, method="DELETE") == 0
        assert [r.record_id for r in report.rejects] == [emp.employee_id], report.rejects
        assert "none of infinityhr.status_values" in report.rejects[0].reason
