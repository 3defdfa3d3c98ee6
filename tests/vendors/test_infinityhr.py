"""InfinityHR: SOAP calls, paging, sessions (idle renewal, InvalidSessionException), faults, privacy."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest
from pydantic import SecretStr

from syncd.errors import ProtocolError, RejectedError, TransientError, VendorConfigError
from syncd.sandbox import Sandbox
from syncd.vendors import Employee, InfinityHRClient

from .conftest import FakeClock, SandboxFactory, infinityhr_settings


def auth_count(sb: Sandbox) -> int:
    return sb.request_log.count(vendor="infinityhr", op="Authenticate")


async def test_full_read_pages_until_total_count(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, page_size=7))
    employees, invalid = await client.get_employees_all()
    assert invalid == []
    assert [e.employee_id for e in employees] == [e.employee_id for e in sandbox.company.employee_list()]
    pages = sandbox.request_log.count(vendor="infinityhr", op="GetEmployeesAll")
    assert pages == -(-len(employees) // 7)
    assert auth_count(sandbox) == 1


async def test_ssn_and_personal_email_are_dropped(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox))
    employees, _ = await client.get_employees_all()
    names = {f.name for f in dataclasses.fields(Employee)}
    assert not {n for n in names if "ssn" in n or "personal" in n}
    private = {e.ssn for e in sandbox.company.employees.values()}
    private |= {e.personal_email for e in sandbox.company.employees.values()}
    values = {v for e in employees for v in dataclasses.astuple(e)}
    assert not values & private
    first = employees[0]
    src = sandbox.company.employees[first.employee_id]
    assert first.work_email == src.work_email and first.hire_date == src.hire_date
    assert first.last_modified is not None and first.last_modified.tzinfo is not None


async def test_departments(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    departments, invalid = await InfinityHRClient(http, infinityhr_settings(sandbox)).get_departments()
    assert invalid == []
    assert {d.code for d in departments} == set(sandbox.company.departments)
    tops = [d for d in departments if d.parent_code is None]
    assert tops and all(isinstance(d.is_active, bool) for d in departments)


@pytest.mark.slow
async def test_idle_session_renewed_between_slow_pages(
    make_sandbox: SandboxFactory, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sb = await make_sandbox(employees=2500, infinityhr_idle_timeout=2.0)
    sb.infinityhr.clock = clock.time
    # no read-ahead beyond the next page: each pause leaves the session idle when the page after the
    # next one is asked for, so only a renewal before the idle timeout keeps the service from refusing it
    settings = infinityhr_settings(
        sb, page_size=1000, session_idle_timeout=2.0, session_renew_margin=0.5, prefetch_pages=0
    )
    client = InfinityHRClient(http, settings, clock=clock.monotonic, wall=clock.time)
    seen: list[str] = []
    pauses = 0
    async with asyncio.timeout(30):
        async for page in client.iter_employee_pages():
            assert page.total_count == 2500 and not page.invalid
            seen.extend(e.employee_id for e in page.employees)
            if page.page_number * 1000 < page.total_count:
                # the consumer is slow: the next page (read meanwhile) is answered, then 3 s pass and
                # the session goes idle past its timeout
                await _pages_answered(sb, page.page_number + 1)
                clock.advance(3.0)
                pauses += 1
    assert pauses == 2
    assert len(seen) == 2500 and len(set(seen)) == 2500
    assert auth_count(sb) <= 1 + pauses  # the first login, then at most one per expiry
    assert sb.request_log.count(vendor="infinityhr", op="GetEmployeesAll") == 3  # no page read twice
    # renewed before it expired: the service never had to refuse the session
    assert sb.request_log.count(vendor="infinityhr", code="InvalidSessionException") == 0


async def test_invalid_session_mid_read_reauthenticates_and_resumes(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    settings = infinityhr_settings(sandbox, page_size=10, prefetch_pages=0)
    client = InfinityHRClient(http, settings)
    seen: list[str] = []
    async for page in client.iter_employee_pages():
        seen.extend(e.employee_id for e in page.employees)
        if page.page_number == 2:
            sandbox.infinityhr.expire_sessions()  # the service forgets the session
    log = sandbox.request_log
    assert sorted(seen) == sorted(sandbox.company.employees) and len(seen) == len(set(seen))
    assert log.count(vendor="infinityhr", code="InvalidSessionException") == 1
    assert auth_count(sandbox) == 2
    # page 3 was asked twice (refused, then after re-authentication); no other page was repeated
    pages = log.count(vendor="infinityhr", op="GetEmployeesAll")
    assert pages == -(-len(seen) // 10) + 1


async def test_invalid_session_during_read_ahead_renews_once(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, page_size=10, prefetch_pages=2))
    seen: list[str] = []
    async for page in client.iter_employee_pages():
        seen.extend(e.employee_id for e in page.employees)
        if page.page_number == 2:
            sandbox.infinityhr.expire_sessions()  # pages 3, 4 and 5 are asked with the dead session
    log = sandbox.request_log
    assert sorted(seen) == sorted(sandbox.company.employees) and len(seen) == len(set(seen))
    refused = log.count(vendor="infinityhr", code="InvalidSessionException")
    assert 1 <= refused <= 3  # each request in flight is refused at most once
    assert auth_count(sandbox) == 2  # the refusals share one re-authentication
    assert log.count(vendor="infinityhr", op="GetEmployeesAll") == -(-len(seen) // 10) + refused


async def test_concurrent_calls_share_one_authentication(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, max_concurrency=20))
    async with asyncio.timeout(15):
        await asyncio.gather(*(client.get_departments() for _ in range(20)))
    assert auth_count(sandbox) == 1
    sandbox.infinityhr.expire_sessions()
    async with asyncio.timeout(15):
        await asyncio.gather(*(client.get_departments() for _ in range(20)))
    assert auth_count(sandbox) == 2


async def test_wrong_password_names_the_keys(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, vendor_password=SecretStr("nope")))
    with pytest.raises(
        VendorConfigError, match=r"infinityhr\.vendor_id / infinityhr\.vendor_password"
    ) as err:
        await client.get_departments()
    assert err.value.code == "VendorNotFoundException"
    assert auth_count(sandbox) == 1


async def test_inactive_vendor_is_a_config_error(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    settings = infinityhr_settings(
        sandbox, vendor_id="inactive-vendor", vendor_password=SecretStr("inactive-vendor-pass")
    )
    with pytest.raises(VendorConfigError, match="not active"):
        await InfinityHRClient(http, settings).get_departments()


async def test_argument_exception_is_rejected_not_retried(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, company_id="OTHER"))
    with pytest.raises(RejectedError) as err:
        await client.get_departments()
    assert err.value.code == "ArgumentException"
    assert sandbox.request_log.count(vendor="infinityhr", op="GetDepartments") == 1


async def test_transient_faults_are_retried_to_success(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, page_size=5, timeout=0.5))
    f = sandbox.faults["infinityhr"]
    f.error_rate, f.hang_rate, f.hang_seconds = 0.3, 0.1, 5.0
    async with asyncio.timeout(30):
        employees, _ = await client.get_employees_all()
    assert len(employees) == len(sandbox.company.employees)
    log = sandbox.request_log
    assert (
        log.count(vendor="infinityhr", code="soap:Server") + log.count(vendor="infinityhr", code="HANG") > 0
    )


async def test_gateway_errors_are_transient(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, retry_attempts=2))
    await client.get_departments()
    f = sandbox.faults["infinityhr"]
    f.error_rate, f.error_status = 1.0, 503
    with pytest.raises(TransientError):
        await client.get_departments()
    assert sandbox.request_log.count(vendor="infinityhr", status=503) == 2


@pytest.mark.parametrize("kind", ["malformed", "entity_expansion"])
async def test_corrupt_responses_are_protocol_errors(
    sandbox: Sandbox, http: aiohttp.ClientSession, kind: str
) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox))
    sandbox.faults["infinityhr"].corrupt = kind
    with pytest.raises(ProtocolError):
        await client.get_employees_all()
    employees, _ = await client.get_employees_all()
    assert employees


async def test_gzip_body_cut_short_is_retried(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox))
    sandbox.faults["infinityhr"].corrupt = "truncated_gzip"
    employees, _ = await client.get_employees_all()
    assert len(employees) == len(sandbox.company.employees)
    assert sandbox.request_log.count(vendor="infinityhr", op="GetEmployeesAll") == 2


async def _pages_answered(sb: Sandbox, count: int) -> None:
    """Waits (up to 5 s) until the sandbox has answered ``count`` page requests."""
    for _ in range(500):
        if sb.request_log.count(vendor="infinityhr", op="GetEmployeesAll", status=200) >= count:
            return
        await asyncio.sleep(0.01)


def _read_ahead_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("infinityhr GetEmployeesAll page")]


async def _requests_reach(sb: Sandbox, count: int) -> int:
    """Waits (up to 5 s) until the sandbox has received ``count`` page requests; returns what it has."""
    seen = 0
    for _ in range(500):
        seen = sb.request_log.count(vendor="infinityhr", op="GetEmployeesAll")
        if seen >= count:
            break
        await asyncio.sleep(0.01)
    return seen


@pytest.mark.parametrize("prefetch", [0, 1, 3])
async def test_read_ahead_asks_each_page_once_and_yields_them_in_order(
    sandbox: Sandbox, http: aiohttp.ClientSession, prefetch: int
) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, page_size=7, prefetch_pages=prefetch))
    pages = -(-len(sandbox.company.employees) // 7)
    assert pages >= 5
    numbers: list[int] = []
    seen: list[str] = []
    async for page in client.iter_employee_pages():
        numbers.append(page.page_number)
        seen.extend(e.employee_id for e in page.employees)
        # while this page is handled, the next one is read and ``prefetch`` more are asked for, no more
        expected = min(page.page_number + 1 + prefetch, pages)
        assert await _requests_reach(sandbox, expected) == expected
    assert numbers == list(range(1, pages + 1))
    assert seen == [e.employee_id for e in sandbox.company.employee_list()]
    assert sandbox.request_log.count(vendor="infinityhr", op="GetEmployeesAll") == pages
    assert _read_ahead_tasks() == []


async def test_read_ahead_is_cancelled_when_the_reader_stops(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.faults["infinityhr"].latency_ms = 200  # the pages asked ahead are still in flight
    client = InfinityHRClient(http, infinityhr_settings(sandbox, page_size=7, prefetch_pages=3))
    reader = client.iter_employee_pages()
    async for page in reader:
        if page.page_number == 2:
            assert "page 6" in [t.get_name()[-6:] for t in _read_ahead_tasks()]  # just asked for
            break
    await reader.aclose()
    assert _read_ahead_tasks() == []


async def test_a_failed_page_stops_the_read_and_cancels_the_rest(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    client = InfinityHRClient(http, infinityhr_settings(sandbox, page_size=7, prefetch_pages=3))
    got: list[int] = []
    with pytest.raises(ProtocolError, match="not acceptable XML"):
        async for page in client.iter_employee_pages():
            got.append(page.page_number)
            if page.page_number == 1:
                sandbox.faults["infinityhr"].corrupt = "malformed"  # one of the pages asked ahead
    assert got[0] == 1 and len(got) <= 3
    assert _read_ahead_tasks() == []
