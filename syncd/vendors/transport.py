"""The request machinery every vendor client shares: the one chokepoint between syncd and a vendor.

One :class:`Transport` per client (per vendor): a concurrency cap, a token-bucket rate limiter, the
per-request timeout, a bound on the response size, the translation of transport failures and of HTTP
429 into :mod:`syncd.errors`, one log event and one metric sample per HTTP request, and the tenacity
retry loop for :class:`~syncd.errors.TransientError` only.

What is *in* a response (status codes, vendor error codes, payloads) is the vendor module's business:
it passes a ``handle`` coroutine that reads the response and translates it through the vendor's own
error tables.  Log events carry ``vendor``,
``method`` (the API operation), ``status``, ``elapsed_ms``, ``attempt`` and, on failure, ``code`` —
never a URL query, header, body, token or secret.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
import structlog
from prometheus_client import Histogram
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
)
from tenacity.stop import stop_base
from yarl import URL

from syncd.config import VendorSettings
from syncd.errors import (
    ProtocolError,
    QuotaExceededError,
    TransientError,
    UnreachableError,
    VendorConfigError,
    VendorError,
)
from syncd.metrics import VENDOR_REQUEST_SECONDS

T = TypeVar("T")

log = structlog.get_logger("syncd.vendors")

CHUNK = 64 * 1024


class RateLimiter:
    """Token bucket: ``rate`` requests per second on average, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


class Transport:
    """HTTP for one vendor: limits, timeout, size bound, error translation, logging, metrics, retry."""

    def __init__(
        self,
        vendor: str,
        session: aiohttp.ClientSession,
        settings: VendorSettings,
        *,
        rate_limit_code: str = "429",
        reads_429: bool = False,
    ) -> None:
        self.vendor = vendor
        #: the error code a 429 answer carries (the vendor's own name for "rate limited")
        self.rate_limit_code = rate_limit_code
        #: the vendor's ``handle`` reads 429 answers itself (their body tells a quota from a throttle)
        self.reads_429 = reads_429
        self.session = session
        self.settings = settings
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        self._limiter = RateLimiter(settings.requests_per_second)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout, sock_connect=settings.connect_timeout)
        self._latency: dict[tuple[str, str], Histogram] = {}

    # ------------------------------------------------------------------------------ one request

    async def request(
        self,
        http_method: str,
        url: str | URL,
        *,
        method: str,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        attempt: int = 1,
        observe: Callable[[aiohttp.ClientResponse], None] | None = None,
    ) -> T:
        """Send one HTTP request and return ``await handle(response)``.

        ``method`` names the API operation for logs and metrics.  ``observe`` (if given) sees every
        response first, whatever its status.  HTTP 429 becomes :class:`TransientError` (with the
        vendor's ``Retry-After``) without calling ``handle``.  Timeouts, resets and refused connections
        become :class:`TransientError`; a corrupt compressed body becomes :class:`ProtocolError`.
        With ``reads_429`` a 429 goes to ``handle`` like any other answer.
        Errors ``handle`` raises pass through (and are logged with their code).
        """
        status = "error"
        code: str | None = None
        quiet = False
        async with self._semaphore:
            await self._limiter.acquire()
            started = time.monotonic()
            try:
                async with self.session.request(
                    http_method,
                    url,
                    headers={"Accept-Encoding": "gzip, deflate", **(headers or {})},
                    data=data,
                    timeout=self._timeout,
                    allow_redirects=False,
                    auto_decompress=False,
                ) as resp:
                    status = str(resp.status)
                    if observe is not None:
                        observe(resp)
                    if resp.status == 429 and not self.reads_429:
                        raise self._rate_limited(resp, method)
                    return await handle(resp)
            except (VendorConfigError, QuotaExceededError) as exc:
                # a request that can never succeed as configured: whoever stops on it reports it
                # once (apply.stopped, stage.stale), instead of a warning per request in flight
                code, quiet = exc.code or type(exc).__name__, True
                raise
            except VendorError as exc:
                code = exc.code or type(exc).__name__
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                code, error = self._translate(exc, method)
                raise error from exc
            finally:
                self._account(method, status, attempt, time.monotonic() - started, code, quiet=quiet)

    def _translate(self, exc: BaseException, method: str) -> tuple[str, VendorError]:
        """A transport failure as (log code, :mod:`syncd.errors` exception)."""
        if isinstance(exc, TimeoutError):
            return "timeout", TransientError(self.vendor, "request timed out", method=method)
        if isinstance(exc, aiohttp.ClientPayloadError):
            if _is_decoding_error(exc):
                message = "response body is not valid compressed data"
                return "bad_encoding", ProtocolError(self.vendor, message, method=method)
            return "payload", TransientError(self.vendor, "response body was cut short", method=method)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return "unreachable", UnreachableError(self.vendor, _unreachable(exc), method=method)
        name = type(exc).__name__
        return name, TransientError(self.vendor, f"connection failed ({name})", method=method)

    def _account(
        self, method: str, status: str, attempt: int, elapsed: float, code: str | None, *, quiet: bool = False
    ) -> None:
        """One metric sample and one log event per HTTP request (a warning when it failed, unless
        ``quiet``: the caller reports that failure)."""
        observer = self._latency.get((method, status))
        if observer is None:  # labels() takes a lock and validates: once per method and status
            observer = VENDOR_REQUEST_SECONDS.labels(self.vendor, method, status)
            self._latency[(method, status)] = observer
        observer.observe(elapsed)
        event = {
            "vendor": self.vendor,
            "method": method,
            "status": status,
            "elapsed_ms": round(elapsed * 1000, 1),
            "attempt": attempt,
        }
        if code is None or quiet:
            log.debug("vendor.request", **({"code": code} if code else {}), **event)
        else:
            log.warning("vendor.request", code=code, **event)

    def _rate_limited(self, resp: aiohttp.ClientResponse, method: str) -> TransientError:
        return TransientError(
            self.vendor, "rate limited", retry_after=retry_after(resp), code=self.rate_limit_code,
            method=method, status=resp.status,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------ retries

    async def retrying(self, method: str, attempt_fn: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt_fn(attempt)`` until it succeeds or fails with a non-transient error.

        Transient failures are retried with exponential backoff and jitter (``retry_backoff_initial``
        doubling up to ``retry_backoff_max``), at least ``Retry-After`` when the vendor gave one, at most
        ``retry_attempts`` attempts, and never past ``retry_deadline`` seconds overall.
        """
        s = self.settings
        started = time.monotonic()
        try:
            async with asyncio.timeout(s.retry_deadline):
                # The first attempt runs without the retry machinery, so the common case (success at
                # once) pays no tenacity set-up.  A transient failure hands over to tenacity, which
                # sees it as its own first attempt.
                try:
                    return await attempt_fn(1)
                except TransientError as exc:
                    first: list[TransientError] = [exc]

                async def attempt_or_replay(n: int) -> T:
                    if first:
                        raise first.pop()
                    return await attempt_fn(n)

                # the deadline counts from the first attempt, not from the hand-over
                left = max(0.0, s.retry_deadline - (time.monotonic() - started))
                retrying = AsyncRetrying(
                    retry=retry_if_exception_type(TransientError),
                    stop=stop_any(
                        stop_after_attempt(s.retry_attempts), stop_before_delay(left), _UnreachableTwice()
                    ),
                    wait=self._wait,
                    before_sleep=self._log_retry(method),
                    reraise=True,
                )
                async for attempt in retrying:
                    with attempt:
                        return await attempt_or_replay(attempt.retry_state.attempt_number)
        except TimeoutError as exc:
            raise TransientError(
                self.vendor, f"gave up after the retry deadline of {s.retry_deadline:g}s", method=method
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        s = self.settings
        ceiling = min(s.retry_backoff_max, s.retry_backoff_initial * 2 ** (state.attempt_number - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay

    def _log_retry(self, method: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.info(
                "vendor.retry",
                vendor=self.vendor,
                method=method,
                attempt=state.attempt_number,
                code=getattr(exc, "code", None) or type(exc).__name__,
                wait_s=round(state.upcoming_sleep, 3),
            )

        return before_sleep


class _UnreachableTwice(stop_base):
    """Stop once an unreachable host has been tried twice: more back-off only delays the message."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        return isinstance(exc, UnreachableError) and retry_state.attempt_number >= 2


def _unreachable(exc: aiohttp.ClientConnectorError) -> str:
    """``cannot connect to HOST:PORT (why)``: where syncd tried, and the operating system's reason."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        why = "host name not resolved"
    elif isinstance(exc.os_error, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(exc.os_error, TimeoutError):
        why = "connect timed out"
    else:
        why = exc.os_error.strerror or type(exc.os_error).__name__
    return f"cannot connect to {exc.host}:{exc.port} ({why})"


def _is_decoding_error(exc: aiohttp.ClientPayloadError) -> bool:
    """aiohttp wraps a failed decompression in ClientPayloadError; tell it from a cut connection."""
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 8:
        if isinstance(cause, aiohttp.http_exceptions.ContentEncodingError):
            return True
        text = str(cause).lower()
        if "decompress" in text or "encoding" in text or "gzip" in text or "zlib" in text:
            return True
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return False


async def read_bounded(resp: aiohttp.ClientResponse, vendor: str, method: str, limit: int) -> bytes:
    """The whole (decompressed) body, or :class:`ProtocolError` as soon as it exceeds ``limit`` bytes."""
    parts: list[bytes] = []
    async for chunk in iter_bounded(resp, vendor, method, limit):
        parts.append(chunk)
    return b"".join(parts)


async def iter_bounded(
    resp: aiohttp.ClientResponse, vendor: str, method: str, limit: int
) -> AsyncIterator[bytes]:
    """The decompressed body in chunks; :class:`ProtocolError` past ``limit`` bytes or on bad gzip.

    Requests are sent with ``auto_decompress=False`` and the body is inflated here, in bounded steps,
    so that a decompression bomb stops at ``limit`` and a truncated gzip stream (which zlib alone
    accepts silently) is detected at its end.
    """
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        inflater: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    elif encoding in ("identity", ""):
        inflater = None
    else:
        raise ProtocolError(vendor, f"unsupported Content-Encoding {encoding!r}", method=method)

    total = 0

    def count(piece: bytes) -> bytes:
        nonlocal total
        total += len(piece)
        if total > limit:
            raise ProtocolError(
                vendor,
                f"response larger than max_response_bytes ({limit} bytes); "
                f"raise {vendor}.max_response_bytes if this is expected",
                method=method,
                status=resp.status,
            )
        return piece

    async for chunk in resp.content.iter_chunked(CHUNK):
        if inflater is None:
            yield count(chunk)
            continue
        data = chunk
        while data:
            try:
                piece = inflater.decompress(data, CHUNK)
            except zlib.error as exc:
                raise ProtocolError(
                    vendor, f"response body is not valid {encoding} data", method=method, status=resp.status
                ) from exc
            data = inflater.unconsumed_tail
            if piece:
                yield count(piece)
            if inflater.eof:
                break
    if inflater is not None and not inflater.eof:
        raise ProtocolError(
            vendor, f"response body is a truncated {encoding} stream", method=method, status=resp.status
        )


def retry_after(resp: aiohttp.ClientResponse) -> float | None:
    """``Retry-After`` in seconds (the delta-seconds form), or ``None``."""
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None
