"""Fault injection for the vendor sub-applications (never for ``/_sandbox``).

Per request, in this order: latency (+ jitter), drop (connection closed, no response), hang (the
handler waits ``hang_seconds`` or until the sandbox stops, then answers 504), rate limit (the next
``rate_limit`` requests answer 429 with ``Retry-After: retry_after``), injected 5xx
(``error_rate``; the vendor's own error shape unless ``error_status`` asks for a bare 502/503/504).
With ``after_handler=True`` drop/hang/error are applied after the handler ran, so the state change
landed but the client sees a failure (the "did my write happen?" case).

``corrupt`` (``truncated_gzip`` | ``malformed`` | ``entity_expansion``) is a one-shot counter: the next
``corrupt_count`` *data* responses are corrupted, then ``corrupt`` resets to None. Data responses are
WhosOff user/department retrieve, InfinityHR GetEmployeesAll/GetEmployeeChanges/GetDepartments and
WORKBOX successful writes. ``entity_expansion`` is XML-only; the JSON vendors treat it as malformed.

Paging faults (InfinityHR ``GetEmployeesAll`` only; page numbers are 1-based, 0 = off):
``page_short`` answers that page ``page_short_by`` records short with TotalCount unchanged;
``page_repeat`` starts that page one record early (the previous page's last record again, as after an
insert the service did not count); ``purge_after_page`` purges the first employee (EmployeeID order)
right after answering that page, so the later pages shift and TotalCount falls.  Each firing uses one of
``page_fault_count`` (0 = no limit); when it reaches 0 the paging faults switch off.

``clock_skew`` (seconds) shifts the WORKBOX gateway clock. All random draws come from one
``random.Random`` per vendor seeded from the sandbox seed, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import gzip
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from .reqlog import LOG_ENTRY, RequestLog

VENDORS = ("whosoff", "infinityhr", "workbox")
CORRUPT_KINDS = ("truncated_gzip", "malformed", "entity_expansion")
#: the NAVER Cloud API Gateway's error table (docs/vendor-contract.md §3.1): errorCode → (HTTP, message)
GATEWAY_ERRORS: dict[str, tuple[int, str]] = {
    "200": (401, "Authentication Failed"),
    "210": (401, "Permission Denied"),
    "400": (429, "Quota Exceeded"),
    "410": (429, "Throttle Limited"),
    "420": (429, "Rate Limited"),
    "430": (413, "Request Entity Too Large"),
    "500": (503, "Endpoint Error"),
    "510": (504, "Endpoint Timeout"),
    "900": (500, "Unexpected Error"),
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int | None = None
    hang_rate: float = 0.0
    hang_seconds: float = 60.0
    rate_limit: int = 0
    retry_after: int = 1
    drop_rate: float = 0.0
    corrupt: str | None = None
    corrupt_count: int = 1
    clock_skew: float = 0.0
    after_handler: bool = False
    page_short: int = 0
    page_short_by: int = 0
    page_repeat: int = 0
    purge_after_page: int = 0
    page_fault_count: int = 0
    #: WORKBOX only: the API Gateway's ``errorCode`` (``GATEWAY_ERRORS``) the next ``gateway_error_count``
    #: requests are answered with, before authentication; no ``Retry-After`` (none is documented)
    gateway_error: str | None = None
    gateway_error_count: int = 1

    def update(self, data: Mapping[str, Any]) -> None:
        """Partial update from JSON; raises ValueError naming the first bad key (nothing applied then)."""
        known = {f.name: f for f in fields(self)}
        staged: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown fault setting {key!r}")
            current = getattr(self, key)
            if key == "gateway_error":
                if value is not None and value not in GATEWAY_ERRORS:
                    raise ValueError(f"gateway_error must be null or one of {', '.join(GATEWAY_ERRORS)}")
            elif key == "corrupt":
                if value is not None and value not in CORRUPT_KINDS:
                    raise ValueError(f"corrupt must be null or one of {CORRUPT_KINDS}")
            elif key == "error_status":
                if value is not None and (not isinstance(value, int) or not 500 <= value <= 599):
                    raise ValueError("error_status must be null or a 5xx status")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be a boolean")
            elif isinstance(current, int):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{key} must be a non-negative integer")
            else:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"{key} must be a number")
                value = float(value)
                if key.endswith("_rate") and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{key} must be within 0..1")
                if key != "clock_skew" and value < 0:
                    raise ValueError(f"{key} must not be negative")
            staged[key] = value
        for key, value in staged.items():
            setattr(self, key, value)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class VendorErrors(Protocol):
    """How a vendor renders the sandbox's injected failures."""

    def injected_error(self, request: web.Request) -> web.StreamResponse: ...

    def rate_limited(self, request: web.Request, retry_after: int) -> web.StreamResponse: ...


class FaultInjector:
    """Applies one vendor's :class:`Faults` (looked up afresh per request, so replacing works)."""

    def __init__(self, vendor: str, faults: dict[str, Faults], seed: int, stop: asyncio.Event) -> None:
        self.vendor = vendor
        self._faults = faults
        self.rng = random.Random(f"{seed}:{vendor}")
        self.stop = stop

    @property
    def faults(self) -> Faults:
        return self._faults.setdefault(self.vendor, Faults())

    def take_corrupt(self) -> str | None:
        """The corruption to apply to this data response, if any (consumes one from the counter)."""
        f = self.faults
        if f.corrupt is None:
            return None
        kind = f.corrupt
        f.corrupt_count -= 1
        if f.corrupt_count <= 0:
            f.corrupt, f.corrupt_count = None, 1
        return kind

    def take_gateway_error(self) -> str | None:
        """The gateway error to answer this request with, if any (consumes one from the counter)."""
        f = self.faults
        code = f.gateway_error
        if code is None:
            return None
        f.gateway_error_count -= 1
        if f.gateway_error_count <= 0:
            f.gateway_error, f.gateway_error_count = None, 1
        return code

    def page_window(self, page: int, size: int) -> tuple[int, int, bool]:
        """``[start, stop)`` of GetEmployeesAll ``page`` after the paging faults, and whether the first
        employee is to be purged once it is answered (consumes the faults that fire)."""
        f = self.faults
        start, stop = (page - 1) * size, page * size
        fired = purge = False
        if f.page_repeat and page == f.page_repeat and page > 1:
            start, stop, fired = start - 1, stop - 1, True
        if f.page_short and page == f.page_short:
            stop, fired = max(start, stop - f.page_short_by), True
        if f.purge_after_page and page == f.purge_after_page:
            purge = fired = True
        if fired and f.page_fault_count > 0:
            f.page_fault_count -= 1
            if f.page_fault_count == 0:
                f.page_short = f.page_short_by = f.page_repeat = f.purge_after_page = 0
        return start, stop, purge

    async def hang(self, request: web.Request, seconds: float) -> web.StreamResponse:
        entry = request.get(LOG_ENTRY)
        if entry is not None:
            entry["code"], entry["status"] = "HANG", 504
        try:
            async with asyncio.timeout(seconds):
                await self.stop.wait()
        except TimeoutError:
            pass
        return web.Response(status=504, text="Gateway Timeout (sandbox hang)")

    def drop(self, request: web.Request) -> web.StreamResponse:
        entry = request.get(LOG_ENTRY)
        if entry is not None:
            entry["code"], entry["status"] = "DROP", 0
        if request.transport is not None:
            request.transport.close()
        # Writing this to the closed transport fails quietly inside aiohttp: the client sees a
        # disconnect with no response at all.
        return web.Response(status=500, text="dropped")


async def send_truncated_gzip(
    request: web.Request, body: bytes, content_type: str, status: int = 200
) -> web.StreamResponse:
    """Announce the full gzip length, send half of it, then cut the connection."""
    data = gzip.compress(body, mtime=0)
    resp = web.StreamResponse(
        status=status, headers={"Content-Type": content_type, "Content-Encoding": "gzip"}
    )
    resp.content_length = len(data)
    await resp.prepare(request)
    await resp.write(data[: len(data) // 2])
    if request.transport is not None:
        request.transport.close()
    return resp


def vendor_middleware(injector: FaultInjector, log: RequestLog, errors: VendorErrors) -> Middleware:
    """Request logging + fault injection for one vendor sub-application."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        entry = log.start(injector.vendor, request)
        request[LOG_ENTRY] = entry
        try:
            response = await _with_faults(request, handler, injector, errors)
        except web.HTTPException as exc:
            entry["status"] = exc.status
            raise
        if entry.get("code") not in ("DROP", "HANG"):
            entry["status"] = response.status
        return response

    return middleware


async def _with_faults(
    request: web.Request, handler: Handler, injector: FaultInjector, errors: VendorErrors
) -> web.StreamResponse:
    f = injector.faults
    rng = injector.rng
    jitter, drop, hang, error = rng.random(), rng.random(), rng.random(), rng.random()
    delay = f.latency_ms + jitter * f.jitter_ms
    if delay > 0:
        await asyncio.sleep(delay / 1000)
    if f.rate_limit > 0:
        f.rate_limit -= 1
        return errors.rate_limited(request, f.retry_after)
    response: web.StreamResponse | None = None
    if f.after_handler:
        response = await handler(request)
    if drop < f.drop_rate:
        return injector.drop(request)
    if hang < f.hang_rate:
        return await injector.hang(request, f.hang_seconds)
    if error < f.error_rate:
        if f.error_status is not None:
            return web.Response(status=f.error_status, text=f"sandbox injected {f.error_status}")
        return errors.injected_error(request)
    return response if response is not None else await handler(request)
