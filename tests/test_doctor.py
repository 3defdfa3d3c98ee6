"""``syncd doctor`` (the real-vendors issue): read-only, every check passes against the contract's
sandbox, and against another dialect it names each difference and prints the lines that fix it;
with those lines applied the sync reaches the exact directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from syncd.config.render import render_toml
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.sandbox import SandboxOptions, run_sandbox, syncd_config_for
from syncd.sandbox.dialect import Dialect, WorkboxDialect, load_dialect
from syncd.states import RunResult
from tests.support.config import merge_config, settings_for
from tests.support.oracle import expected_directory
from tests.support.process import syncd_command
from tests.support.workbox import workbox_state

ROOT = Path(__file__).parents[1]


async def _doctor(
    config: dict[str, Any], tmp_path: Path, *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    path = tmp_path / "doctor.toml"
    path.write_text(render_toml(config))
    path.chmod(0o600)
    code, out, err = await syncd_command("--config", str(path), "doctor", "--json", *args)
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


async def test_doctor_passes_against_the_contract_and_changes_nothing(tmp_path: Path) -> None:
    async with run_sandbox(SandboxOptions(employees=30, seed=6, port=0)) as sb:
        config = syncd_config_for(sb, f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
        code, checks, err = await _doctor(config, tmp_path)
        assert code == 0, (checks, err)
        assert all(c["ok"] for c in checks) and len(checks) >= 12
        wb = [e for e in sb.request_log if e["vendor"] == "workbox"]
        assert wb and {e["method"] for e in wb} == {"DELETE"}  # no POST, no PUT
        assert {e["code"] for e in wb} == {"E904"}  # each probe answered "unknown key"
        assert workbox_state(sb) == {}
        sources = [e for e in sb.request_log if e["vendor"] != "workbox"]
        assert sources and all(e["method"] in ("GET", "POST") for e in sources)  # reads and SOAP calls
    code, out, err = await syncd_command("--config", str(tmp_path / "doctor.toml"), "doctor")
    assert code == 1 and "FAIL" in out  # the sandbox is gone: every vendor check fails, clearly
    assert "cannot connect to" in out and "Traceback" not in out + err


async def test_doctor_finds_every_difference_of_the_combined_dialect_and_its_fixes_converge(
    tmp_path: Path,
) -> None:
    dialect = load_dialect(ROOT / "config" / "dialects" / "combined.toml")
    async with run_sandbox(SandboxOptions(employees=40, seed=6, port=0, dialect=dialect)) as sb:
        db_url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
        config = syncd_config_for(sb, db_url, workbox={"signature": "v1"})  # the contract's defaults
        config["whosoff"]["email_field"] = "email_contact"  # insisting on the contract's key
        named: set[str] = set()
        for _ in range(4):  # run doctor, apply what it prints, until it passes
            code, checks, err = await _doctor(config, tmp_path)
            if code == 0:
                break
            fixes = [c for c in checks if c["fix"]]
            assert fixes, (checks, err)  # a failure doctor cannot fix would loop for ever
            for c in fixes:
                named.add(f"{c['area']} {c['check']}")
                merge_config(config, c["fix"])
        assert code == 0, checks
        assert named >= {"infinityhr wsdl", "infinityhr records", "whosoff users", "workbox authentication"}
        assert config["infinityhr"]["departments_from"] == "employees"
        assert config["infinityhr"]["status_values"]["active"] == ["Active", "A"]
        assert config["workbox"]["signature"] == "v2"
        settings = settings_for(sb, db_url, **{k: v for k, v in config.items() if k != "database"})
        async with SyncContext.open(settings) as ctx:
            first = await run_cycle(ctx, trigger="test")
            second = await run_cycle(ctx, trigger="test")
        assert first.result is RunResult.SUCCESS, first.message()
        assert workbox_state(sb) == expected_directory(sb.company)
        assert second.ops == []


async def test_doctor_names_a_kind_whose_connection_is_off(tmp_path: Path) -> None:
    dialect = Dialect(workbox=WorkboxDialect(connections_off=("job-grade",)))
    async with run_sandbox(SandboxOptions(employees=30, seed=6, port=0, dialect=dialect)) as sb:
        config = syncd_config_for(sb, f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
        code, checks, _ = await _doctor(config, tmp_path, "--vendor", "workbox")
    assert code == 1
    [off] = [c for c in checks if not c["ok"]]
    assert off["check"] == "job-grade" and "Connect organisation" in off["hint"], off


def test_doctor_says_what_to_set_when_the_service_has_no_date_range_method() -> None:
    """Issue 18: the cycles between full reads need ``methods.employees_changed``; a WSDL without it
    gets ``sync.full_every = "0"``, one with a likely other name gets that name."""
    from syncd.config import InfinityHRSettings
    from syncd.doctor.infinityhr import wsdl_check

    s = InfinityHRSettings(url="http://hr.example/EmployeeService.asmx", vendor_id="v", vendor_password="p")
    ns = s.namespace
    base = {op: ns + op for op in ("Authenticate", "GetEmployeesAll", "GetDepartments", "GetEmployeeChanges")}
    missing = wsdl_check(s, ns, base)
    assert not missing.ok and missing.fix == {"sync": {"full_every": "0"}}, missing
    assert "GetEmployeesByDateRange" in missing.detail
    renamed = wsdl_check(s, ns, {**base, "GetEmployeesInDateRange": ns + "GetEmployeesInDateRange"})
    assert renamed.fix == {"infinityhr": {"methods": {"employees_changed": "GetEmployeesInDateRange"}}}
    assert wsdl_check(s, ns, base, incremental=False).ok  # full reads only: nothing to ask of it
