"""NAVER Cloud WORKBOX open API client: signed create/update/delete of directory objects.

Contract: docs/vendor-contract.md §3.

Signing is over the exact path + query that goes on the wire, base path included: the URL is built and
percent-encoded once, signed, and handed to aiohttp as ``yarl.URL(..., encoded=True)`` so it is not
re-encoded.  The timestamp is our clock plus a learned offset: when the gateway answers 401 and its
``Date`` header is more than :data:`SKEW_THRESHOLD` seconds from our clock, the offset is set from it
and the request is retried once.  Until the first answer from the gateway, requests go one at a time,
so a skewed gateway costs exactly one rejected request.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import aiohttp
import structlog
from yarl import URL

from syncd.config import WorkboxSettings
from syncd.errors import (
    AlreadyExistsError,
    EmailTakenError,
    NotFoundError,
    ProtocolError,
    QuotaExceededError,
    RejectedError,
    TransientError,
    VendorConfigError,
    VendorError,
)
from syncd.vendors.transport import Transport, read_bounded, retry_after

VENDOR = "workbox"
Kind = Literal["dept", "user", "job-grade", "job-position"]
KINDS: tuple[str, ...] = ("dept", "user", "job-grade", "job-position")
#: a 401 with the gateway's clock this far (seconds) from ours is taken as clock skew: the gateway
#: rejects timestamps more than 5 minutes off (docs/vendor-contract.md §3.1)
SKEW_THRESHOLD = 240.0
_ERROR_BODY_LIMIT = 64 * 1024

log = structlog.get_logger("syncd.vendors")


# ----------------------------------------------------------------------------------------- signing


def _sign(secret_key: str, message: str) -> str:
    digest = hmac.new(secret_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v1(secret_key: str, method: str, uri: str, timestamp: str, api_key: str, access_key: str) -> str:
    """The WORKBOX document's signature: ``METHOD URI\\ntimestamp\\napi_key\\naccess_key``."""
    return _sign(secret_key, f"{method} {uri}\n{timestamp}\n{api_key}\n{access_key}")


def sign_v2(secret_key: str, method: str, uri: str, timestamp: str, access_key: str) -> str:
    """NAVER's SDKs' signature: ``METHOD URI\\ntimestamp\\naccess_key`` (no api key line)."""
    return _sign(secret_key, f"{method} {uri}\n{timestamp}\n{access_key}")


# ------------------------------------------------------------------------------------------ errors


#: the error code syncd gives a 429 answer without one: the gateway's "Rate Limited" (contract §3.1)
RATE_LIMIT_CODE = "420"
_GATEWAY_401 = (
    "the API Gateway rejected authentication: check workbox.api_key / workbox.access_key / "
    "workbox.secret_key and workbox.signature (v1 or v2)"
)
#: the API Gateway's ``errorCode`` (its own body, ``{"error": {"errorCode", "message"}}``) → (error
#: class, what it means for the operator); docs/vendor-contract.md §3.1, README "Troubleshooting"
_GATEWAY_FAULTS: dict[str, tuple[type[VendorError], str]] = {
    "200": (VendorConfigError, _GATEWAY_401),
    "210": (
        VendorConfigError,
        "Permission Denied: the request was authenticated, but this API key (or its NCP "
        "account) has no permission for the WORKBOX API: in the NCP console, check the API key's "
        "products and that WORKBOX is subscribed for the account",
    ),
    "400": (
        QuotaExceededError,
        "Quota Exceeded: the account's API quota is spent; pushing stops for this cycle and the rest "
        "waits for the next one (raise the quota in the NCP console if this recurs)",
    ),
    "410": (TransientError, "Throttle Limited: backing off"),
    "420": (TransientError, "Rate Limited: backing off"),
    "430": (RejectedError, "Request Entity Too Large: this request's body is over the gateway's limit"),
    "500": (TransientError, "Endpoint Error"),
    "510": (TransientError, "Endpoint Timeout"),
    "900": (TransientError, "Unexpected Error"),
}
#: ``resultCode`` (and HTTP method, ``*`` for any) → (error class, message, whether the answer's own
#: ``resultMessage`` replaces it)
_CODE_FAULTS: dict[tuple[str, str], tuple[type[VendorError], str, bool]] = {
    ("E901", "*"): (
        VendorConfigError,
        "the WORKBOX open API is switched off: enable it in the WORKBOX admin console",
        False,
    ),
    ("E903", "*"): (
        VendorConfigError,
        "WORKBOX refuses this kind: its organisation connection is OFF (or basic settings are NO): "
        "switch it ON in the NCP console, WORKBOX > Developers > Connect organisation",
        False,
    ),
    ("E904", "POST"): (AlreadyExistsError, "externalKey already exists", True),
    ("E904", "*"): (NotFoundError, "externalKey not found", True),
    ("E1001", "*"): (TransientError, "server error", True),
}
#: HTTP statuses when the ``resultCode`` is not in the table: (error class, message, the same flag)
_STATUS_FAULTS: dict[int, tuple[type[VendorError], str, bool]] = {
    401: (VendorConfigError, _GATEWAY_401, False),
}


def _error(
    http_method: str,
    status: int,
    body: Any,
    method: str,
    retry_after: float | None = None,
    email_taken: re.Pattern[str] | None = None,
) -> VendorError:
    """The :mod:`syncd.errors` exception for a non-2xx answer: WORKBOX's own ``resultCode``, else the
    API Gateway's ``errorCode``, else the HTTP status (``email_taken``: which E902 messages to a member
    say its e-mail address is taken, ``workbox.email_taken``)."""
    kw: dict[str, Any] = {"method": method, "status": status}
    code: str | None = None
    message = ""
    if isinstance(body, dict):
        if isinstance(body.get("resultCode"), str):
            code = body["resultCode"]
            message = str(body.get("resultMessage") or "")[:200]
        elif isinstance(body.get("error"), dict):
            gateway = body["error"].get("errorCode")
            if isinstance(gateway, str | int) and str(gateway) in _GATEWAY_FAULTS:
                cls, meaning = _GATEWAY_FAULTS[str(gateway)]
                if cls is TransientError:
                    return TransientError(VENDOR, meaning, retry_after=retry_after, code=str(gateway), **kw)
                return cls(VENDOR, meaning, code=str(gateway), **kw)
            message = str(body["error"].get("message") or "")[:200]
    if status == 429:  # a throttle without the gateway's body: back off, honouring Retry-After
        return TransientError(VENDOR, "rate limited", retry_after=retry_after, code=RATE_LIMIT_CODE, **kw)
    entry = None
    if code is not None:
        entry = _CODE_FAULTS.get((code, http_method)) or _CODE_FAULTS.get((code, "*"))
    if entry is None and status >= 500:
        entry = (TransientError, "server error", True)
    if entry is None and status in _STATUS_FAULTS:
        entry = _STATUS_FAULTS[status]
        code = str(status)
    cls, default, own_message = entry or (RejectedError, "request rejected", True)
    taken = code == "E902" and email_taken is not None and email_taken.search(message)
    if taken and method.endswith(" user"):
        cls = EmailTakenError
    return cls(VENDOR, (message if own_message else "") or default, code=code, **kw)


class _ClockSkew(VendorError):
    """A 401 from a gateway whose clock is far from ours (handled inside the client, never raised out)."""

    def __init__(self, offset_ms: int, method: str) -> None:
        super().__init__(
            VENDOR, "timestamp rejected: clock skew", code="clock_skew", status=401, method=method
        )
        self.offset_ms = offset_ms


# ------------------------------------------------------------------------------------------ client

_OTHER_VARIANT = {"v1": "v2", "v2": "v1"}


class WorkboxClient:
    """Create, update and delete WORKBOX departments, users, job grades and job positions."""

    def __init__(self, session: aiohttp.ClientSession, settings: WorkboxSettings) -> None:
        self.settings = settings
        self._transport = Transport(
            VENDOR, session, settings, rate_limit_code=RATE_LIMIT_CODE, reads_429=True
        )
        split = urlsplit(settings.url)
        self._origin = f"{split.scheme}://{split.netloc}"
        self._base_path = split.path.rstrip("/")
        self._email_taken = re.compile(settings.email_taken, re.IGNORECASE)
        self.clock_offset_ms = 0
        self._clock_known = asyncio.Event()
        self._clock_probe = False
        #: the signature variant in use (``auto`` starts with v1, or what :attr:`variant` is set to)
        self.variant: str = "v1" if settings.signature == "auto" else settings.signature
        #: ``auto`` and nothing answered yet: a refused signature may be the other variant
        self._detecting = settings.signature == "auto"
        #: called with the variant ``auto`` found to work (the engine keeps it in the database)
        self.on_variant: Callable[[str], Awaitable[None]] | None = None

    async def create(self, kind: Kind, key: str, body: dict[str, Any]) -> None:
        """POST; :class:`AlreadyExistsError` if ``key`` exists (an earlier attempt landed)."""
        await self._call("POST", kind, key, body)

    async def update(self, kind: Kind, key: str, body: dict[str, Any]) -> None:
        """PUT (the full body); :class:`NotFoundError` if ``key`` is unknown."""
        await self._call("PUT", kind, key, body)

    async def delete(self, kind: Kind, key: str) -> None:
        """DELETE; :class:`NotFoundError` if ``key`` is unknown (it already happened)."""
        await self._call("DELETE", kind, key, None)

    async def probe(self, kind: Kind) -> str:
        """A harmless signed request for ``kind``: DELETE of a key that cannot exist.  WORKBOX answers
        it "unknown key" (E904) when the keys, the signature, the company id and the API switch are
        right; that answer returns the key probed, any other raises what it means."""
        key = f"syncd-doctor-{secrets.token_hex(6)}"
        try:
            await self._call("DELETE", kind, key, None)
        except NotFoundError:
            return key
        raise ProtocolError(VENDOR, f"DELETE of the made-up key {key} succeeded", method=f"DELETE {kind}")

    def resource_uri(self, kind: str, key: str) -> str:
        """The encoded path (base path included) that is both sent and signed."""
        if kind not in KINDS:
            raise ValueError(f"unknown WORKBOX kind {kind!r}")
        company = quote(self.settings.company_id, safe="")
        return f"{self._base_path}/organization/company/{company}/{kind}/{quote(key, safe='')}"

    def signed_headers(self, http_method: str, uri: str) -> dict[str, str]:
        s = self.settings
        timestamp = str(int(time.time() * 1000) + self.clock_offset_ms)
        secret, api_key = s.secret_key.get_secret_value(), s.api_key.get_secret_value()
        headers = {
            "x-ncp-apigw-timestamp": timestamp,
            "x-ncp-apigw-api-key": api_key,
            "x-ncp-iam-access-key": s.access_key,
            "Content-Type": "application/json",
        }
        if self.variant == "v2":
            headers["x-ncp-apigw-signature-v2"] = sign_v2(secret, http_method, uri, timestamp, s.access_key)
        else:
            headers["x-ncp-apigw-signature-v1"] = sign_v1(
                secret, http_method, uri, timestamp, api_key, s.access_key
            )
        return headers

    async def _call(self, http_method: str, kind: str, key: str, body: dict[str, Any] | None) -> None:
        method = f"{http_method} {kind}"
        uri = self.resource_uri(kind, key)
        data = (
            json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else None
        )

        async def attempt(n: int) -> None:
            for skew_retry in (False, True):
                try:
                    return await self._signed(http_method, uri, data, method, n)
                except _ClockSkew as skew:
                    if skew_retry:
                        raise VendorConfigError(VENDOR, _GATEWAY_401, code="401", method=method) from None
                    self._adopt_offset(skew.offset_ms, method)
                    self._clock_known.set()

        if not self._clock_known.is_set():
            if self._clock_probe:
                await self._clock_known.wait()
            else:  # the first request goes alone, so a skewed gateway costs one rejected request
                self._clock_probe = True
                try:
                    await self._transport.retrying(method, attempt)
                    return
                finally:
                    self._clock_known.set()
        await self._transport.retrying(method, attempt)

    async def _signed(
        self, http_method: str, uri: str, data: bytes | None, method: str, attempt: int
    ) -> None:
        """One request; with ``signature = "auto"`` and nothing answered yet, a refused signature is
        tried once with the other variant (and the one that works is kept and reported once)."""
        if not self._detecting:
            return await self._send(http_method, uri, data, method, attempt)
        try:
            await self._send(http_method, uri, data, method, attempt)
        except VendorConfigError as exc:
            if exc.code != "200":
                raise
            first, self.variant = self.variant, _OTHER_VARIANT[self.variant]
            try:
                await self._send(http_method, uri, data, method, attempt)
            except VendorConfigError as again:
                self.variant = first
                if again.code == "200":
                    self._detecting = False  # neither variant: the keys are wrong, not the variant
                    raise exc from None
                raise
            log.warning("workbox.signature_detected", vendor=VENDOR, signature=self.variant, refused=first)
            self._detecting = False
            if self.on_variant is not None:
                await self.on_variant(self.variant)
            return
        except RejectedError:  # "exists", "unknown", a body refused: it was authenticated
            self._detecting = False  # authenticated: the variant in use works
            raise
        self._detecting = False

    def _adopt_offset(self, offset_ms: int, method: str) -> None:
        if abs(offset_ms - self.clock_offset_ms) / 1000 > SKEW_THRESHOLD:
            self.clock_offset_ms = offset_ms
            log.warning("workbox.clock_skew", vendor=VENDOR, method=method, offset_s=offset_ms / 1000)

    async def _send(self, http_method: str, uri: str, data: bytes | None, method: str, attempt: int) -> None:
        signed_with = self.clock_offset_ms  # a 401 is judged against the clock this request used

        def learn_clock(resp: aiohttp.ClientResponse) -> None:
            # any answer but a 401 tells the gateway's clock by its Date (a 429 or 5xx may come first)
            if resp.status != 401:
                offset = self._skew_from(resp, signed_with)
                if offset is not None:
                    self._adopt_offset(offset, method)
                self._clock_known.set()

        async def handle(resp: aiohttp.ClientResponse) -> None:
            if 200 <= resp.status < 300:
                return  # success bodies carry nothing a client needs; they are not read
            raw = await read_bounded(
                resp, VENDOR, method, min(_ERROR_BODY_LIMIT, self.settings.max_response_bytes)
            )
            try:
                body: Any = json.loads(raw) if raw.strip() else None
            except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: hostile nesting
                body = None
            if resp.status == 401:
                offset = self._skew_from(resp, signed_with)
                if offset is not None:
                    raise _ClockSkew(offset, method)
            raise _error(http_method, resp.status, body, method, retry_after(resp), self._email_taken)

        headers = self.signed_headers(http_method, uri)
        url = URL(self._origin + uri, encoded=True)
        await self._transport.request(
            http_method, url, method=method, handle=handle, headers=headers, data=data, attempt=attempt,
            observe=learn_clock,
        )  # fmt: skip

    def _skew_from(self, resp: aiohttp.ClientResponse, signed_with: int) -> int | None:
        """The offset (ms) of the gateway's ``Date`` from our clock if it is far from the offset the
        request was signed with (``signed_with``), else ``None``."""
        date = resp.headers.get("Date")
        gateway = _gateway_clock(date) if date else None
        if gateway is None:
            return None
        offset = gateway - time.time()
        if abs(offset - signed_with / 1000) <= SKEW_THRESHOLD:
            return None
        return int(offset * 1000)


@functools.lru_cache(maxsize=16)
def _gateway_clock(date: str) -> float | None:
    """An HTTP ``Date`` as epoch seconds (cached: it changes once a second, and every answer has one)."""
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
