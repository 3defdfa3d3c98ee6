"""InfinityHR SOAP client (docs/vendor-contract.md §2): Authenticate, GetEmployeesAll, GetDepartments.

The [designed] wire choices (namespace, SOAPAction form, method and element names, status values,
where departments come from) are configuration (``[infinityhr]``, contract §2.2a and §4) and are
applied here, in :mod:`syncd.vendors.infinityhr_models` and in :mod:`syncd.vendors._soap`; the engine
sees none of them.  SSN and PersonalEmail are never read: no model, log line or
:class:`InvalidRecord` ever holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import aiohttp
import structlog
from lxml import etree
from pydantic import SecretStr

from syncd.config import InfinityHRSettings
from syncd.errors import (
    InconsistentReadError,
    ProtocolError,
    RejectedError,
    TokenExpiredError,
    TransientError,
    VendorConfigError,
)
from syncd.vendors._soap import SoapResult, build_envelope, read_soap
from syncd.vendors.common import InvalidRecord, split_records
from syncd.vendors.credentials import Clock, Grant, InfinityHRSessionManager, with_renewal
from syncd.vendors.infinityhr_models import (
    PRIVATE_FIELDS,
    Department,
    Employee,
    EmployeePage,
    EmployeeReader,
    InvalidValue,
    departments_of,
    parse_datetime,
    parse_department,
)
from syncd.vendors.paging import PageAudit
from syncd.vendors.transport import Transport, iter_bounded

VENDOR = "infinityhr"
__all__ = [
    "PRIVATE_FIELDS",
    "Department",
    "Employee",
    "EmployeePage",
    "InfinityHRAuth",
    "InfinityHRClient",
]
CONTENT_TYPE = "text/xml; charset=utf-8"

log = structlog.get_logger("syncd.vendors")
R = TypeVar("R")
#: (begin, end) of an incremental read: the employees changed in between
DateRange = tuple[dt.datetime, dt.datetime]


# ------------------------------------------------------------------------------------- wire level


_FAULTS = {
    "VendorNotFoundException": (
        VendorConfigError,
        "InfinityHR does not know this vendor id and password: check infinityhr.vendor_id / "
        "infinityhr.vendor_password",
    ),
    "VendorNotActiveException": (
        VendorConfigError,
        "the InfinityHR vendor account is not active: ask InfinityHR to activate infinityhr.vendor_id",
    ),
    "InvalidSessionException": (TokenExpiredError, "session invalid or expired"),
}


class _Wire:
    def __init__(self, transport: Transport, settings: InfinityHRSettings) -> None:
        self.transport = transport
        self.settings = settings

    async def call(
        self,
        method: str,
        request: Sequence[tuple[str, str | None]],
        *,
        extra: Sequence[tuple[str, str]] = (),
        record_tags: frozenset[str] = frozenset(),
        on_record: Callable[[etree._Element], Any] = lambda el: None,
        attempt: int = 1,
    ) -> SoapResult:
        """One SOAP call (one HTTP request); faults and HTTP errors become :mod:`syncd.errors`."""
        s = self.settings
        body = build_envelope(s.namespace, method, request, extra)
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": f'"{s.action(method)}"'}
        limit = self.settings.max_response_bytes

        async def handle(resp: aiohttp.ClientResponse) -> SoapResult:
            kw: dict[str, Any] = {"method": method, "status": resp.status}
            if resp.status in (502, 503, 504) or (resp.status >= 500 and resp.status != 500):
                raise TransientError(VENDOR, "server unavailable", **kw)
            if resp.status not in (200, 500):
                raise RejectedError(VENDOR, "unexpected HTTP status", **kw)
            try:
                result = await read_soap(
                    iter_bounded(resp, VENDOR, method, limit), vendor=VENDOR, method=method,
                    record_tags=record_tags, on_record=on_record, status=resp.status,
                )  # fmt: skip
            except ProtocolError:
                if resp.status == 500:
                    raise TransientError(VENDOR, "server error with an unreadable body", **kw) from None
                raise
            if result.fault is not None:
                _raise_fault(result, kw)
            if resp.status != 200 or not result.saw_result:
                raise ProtocolError(VENDOR, f"response has no {method}Result", **kw)
            return result

        return await self.transport.request(
            "POST",
            self.settings.url,
            method=method,
            handle=handle,
            headers=headers,
            data=body,
            attempt=attempt,
        )


def _raise_fault(result: SoapResult, kw: dict[str, Any]) -> None:
    fault = result.fault
    assert fault is not None
    exc_type = fault.exception_type
    if exc_type in _FAULTS:
        cls, message = _FAULTS[exc_type]
        raise cls(VENDOR, message, code=exc_type, **kw)
    if exc_type == "ArgumentException" or (exc_type is None and fault.faultcode.endswith("Client")):
        raise RejectedError(
            VENDOR, fault.faultstring or "request rejected", code=exc_type or "soap:Client", **kw
        )
    raise TransientError(VENDOR, "server fault", code=exc_type or "soap:Server", **kw)


class InfinityHRAuth:
    """The :class:`~syncd.vendors.credentials.SessionIssuer` for InfinityHR."""

    def __init__(self, wire: _Wire) -> None:
        self._wire = wire

    async def authenticate(self) -> Grant:
        s = self._wire.settings
        request = [("VendorID", s.vendor_id), ("VendorPwd", s.vendor_password.get_secret_value())]

        method = s.methods.authenticate

        async def attempt(n: int) -> SoapResult:
            return await self._wire.call(method, request, attempt=n)

        result = await self._wire.transport.retrying(method, attempt)
        values = result.scalars
        session_id = values.get("SessionID")
        if not session_id:
            raise ProtocolError(VENDOR, "Authenticate returned no SessionID", method="Authenticate")
        if (values.get("IsVendorActive") or "true").lower() in ("false", "0"):
            message = _FAULTS["VendorNotActiveException"][1]
            raise VendorConfigError(VENDOR, message, code="IsVendorActive", method="Authenticate")
        lifetime = 0.0
        try:
            start, end = parse_datetime(values, "SessionStart"), parse_datetime(values, "SessionEnd")
            if start is not None and end is not None:
                lifetime = (end - start).total_seconds()
        except InvalidValue:
            pass
        return Grant(SecretStr(session_id), lifetime)


# ------------------------------------------------------------------------------------------ client


class InfinityHRClient:
    """Employees and departments from InfinityHR.  The caller owns ``session``.

    ``sessions`` may be shared (and kept alive by the daemon); by default the client makes its own,
    available as :attr:`sessions`, on ``clock`` (monotonic) and ``wall`` (unix time).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: InfinityHRSettings,
        *,
        sessions: InfinityHRSessionManager | None = None,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.settings = settings
        self._transport = Transport(VENDOR, session, settings)
        self._wire = _Wire(self._transport, settings)
        self._parse_employee = EmployeeReader(
            settings.fields.model_dump(), settings.status_values.canonical()
        )
        auth = InfinityHRAuth(self._wire)
        self.sessions = sessions or InfinityHRSessionManager(settings, auth, clock=clock, wall=wall)

    async def _call(
        self,
        method: str,
        *,
        page: int | None = None,
        page_size: int | None = None,
        extra: Sequence[tuple[str, str]] = (),
        record_tags: frozenset[str] = frozenset(),
        on_record: Callable[[etree._Element], Any] = lambda el: None,
    ) -> SoapResult:
        """A data call with a live session; on InvalidSessionException one re-authentication and retry."""
        s = self.settings
        clock = self.sessions.clock

        async def call(session: SecretStr) -> SoapResult:
            request: list[tuple[str, str | None]] = [
                ("VendorID", s.vendor_id),
                ("SessionID", session.get_secret_value()),
                ("CompanyID", s.company_id),
            ]
            if page is not None:
                request += [("PageNumber", str(page)), ("PageSize", str(page_size or s.page_size))]
            sent = clock()

            async def attempt(n: int) -> SoapResult:
                nonlocal sent
                sent = clock()
                return await self._wire.call(
                    method, request, extra=extra, record_tags=record_tags, on_record=on_record, attempt=n
                )

            result = await self._transport.retrying(method, attempt)
            self.sessions.touch(session, sent)
            return result

        def refused() -> None:
            log.info("session.refused", vendor=VENDOR, method=method, page=page)

        return await with_renewal(self.sessions, call, on_refused=refused)

    async def _pages(
        self,
        method: str,
        record_tag: str,
        parse: Callable[[etree._Element], R | InvalidRecord],
        extra: Sequence[tuple[str, str]] = (),
    ) -> AsyncGenerator[tuple[int, int, list[R], list[InvalidRecord]], None]:
        """Every page of ``method``, in order.

        While the caller handles a page, the next one is read and ``prefetch_pages`` more are requested
        (0: one request at a time).  Pages are addressed by number, so a read-ahead asks for nothing a
        sequential read would not; whatever is still in flight when the reader stops or fails is
        cancelled.
        """
        tags = frozenset({record_tag})

        def fetch(number: int) -> Coroutine[Any, Any, SoapResult]:
            return self._call(method, page=number, extra=extra, record_tags=tags, on_record=parse)

        ahead: dict[int, asyncio.Task[SoapResult]] = {}
        page, result = 1, await fetch(1)
        try:
            while True:
                total = _int(result, "TotalCount", method)
                size = max(1, _int(result, "PageSize", method, default=self.settings.page_size))
                last = -(-total // size)
                # the next page is read (in its own task) while this one is handed on, and
                # ``prefetch_pages`` more are asked for meanwhile: the service builds them while the
                # next one is parsed here
                for later in range(page + 1, min(last, page + 1 + self.settings.prefetch_pages) + 1):
                    if later not in ahead:
                        ahead[later] = asyncio.create_task(
                            fetch(later), name=f"{VENDOR} {method} page {later}"
                        )
                good, bad = split_records(result.records)
                yield page, total, good, bad
                if page * size >= total:
                    return
                if not result.records:
                    empty = f"page {page} is empty but TotalCount is {total}"
                    raise ProtocolError(VENDOR, empty, method=method)
                page += 1
                task = ahead.pop(page, None)
                result = await (task if task is not None else fetch(page))
        finally:
            for task in ahead.values():
                task.cancel()
            await asyncio.gather(*ahead.values(), return_exceptions=True)

    def _employees_method(self, changed: DateRange | None) -> tuple[str, list[tuple[str, str]]]:
        """The method and its arguments after ``<request>``: every employee, or those changed in
        ``changed`` (``[infinityhr.date_range]``)."""
        if changed is None:
            return self.settings.methods.employees, []
        r = self.settings.date_range
        begin, end = (t.astimezone(dt.UTC).strftime(r.format) for t in changed)
        return self.settings.methods.employees_changed, [(r.begin, begin), (r.end, end)]

    async def iter_employee_pages(
        self, changed: DateRange | None = None
    ) -> AsyncGenerator[EmployeePage, None]:
        """``GetEmployeesAll`` (or, given ``changed``, the employees changed in that range) page by page,
        re-authenticating as needed and resuming at the failed page.

        The pages are not checked against each other: :meth:`read_employee_pages` does that.
        """
        method, extra = self._employees_method(changed)
        # aclosing: a reader that stops early closes the pages at once (cancelling what is asked ahead)
        pages = self._pages(method, "EmployeeInfo", self._parse_employee, extra)
        async with contextlib.aclosing(pages):
            async for page, total, good, bad in pages:
                yield EmployeePage(page, total, good, bad)

    async def read_employee_pages(
        self,
        on_page: Callable[[EmployeePage], None] = lambda page: None,
        changed: DateRange | None = None,
        *,
        keep: bool = True,
    ) -> list[EmployeePage]:
        """The pages of one consistent ``GetEmployeesAll`` read (:mod:`syncd.vendors.paging`), or of the
        employees changed in ``changed`` (begin, end).

        An inconsistent read is read again once, from page 1; a second one raises
        :class:`~syncd.errors.InconsistentReadError` naming the checks that failed.  ``on_page`` sees
        every page as it arrives (both reads: a page 1 starts again).  ``keep=False``: the pages are
        not returned (nor held: a caller that takes what it needs in ``on_page`` keeps one copy).
        """
        problems: list[str] = []
        method, _ = self._employees_method(changed)
        for attempt in (1, 2):
            audit, pages = PageAudit("EmployeeID"), []
            async with contextlib.aclosing(self.iter_employee_pages(changed)) as reader:
                async for page in reader:
                    ids = [e.employee_id for e in page.employees] + [r.record_id for r in page.invalid]
                    audit.add(page.page_number, page.total_count, ids, len(ids))
                    on_page(page)
                    if keep:
                        pages.append(page)
            problem = audit.problem()
            if problem is None:
                return pages
            problems.append(problem)
            log.warning("read.inconsistent", vendor=VENDOR, method=method, attempt=attempt, problem=problem)
        message = f"the pages disagree, read twice: {problems[1]} (the first read: {problems[0]})"
        raise InconsistentReadError(VENDOR, message, method=method)

    async def get_employees_all(self) -> tuple[list[Employee], list[InvalidRecord]]:
        employees: dict[str, Employee] = {}
        invalid: list[InvalidRecord] = []
        for page in await self.read_employee_pages():
            for emp in page.employees:
                employees.setdefault(emp.employee_id, emp)
            invalid.extend(page.invalid)
        return list(employees.values()), invalid

    async def get_departments(self) -> tuple[list[Department], list[InvalidRecord]]:
        """The departments: from the departments method, or (``departments_from = "employees"``) built
        from one consistent employee read: each code an employee is in, with the name and parent code
        the records give (a code no employee is in any more is gone)."""
        if self.settings.departments_from == "employees":
            return departments_of(await self.get_employees_all())
        result = await self._call(
            self.settings.methods.departments,
            record_tags=frozenset({"DepartmentInfo"}),
            on_record=parse_department,
        )
        departments: list[Department | InvalidRecord] = list(result.records)
        return split_records(departments)


def _int(result: SoapResult, name: str, method: str, default: int | None = None) -> int:
    text = result.scalars.get(name)
    if text is None and default is not None:
        return default
    try:
        return int(text or "")
    except ValueError:
        raise ProtocolError(VENDOR, f"{method}Result has no valid {name}", method=method) from None
