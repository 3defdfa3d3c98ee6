"""WhosOff REST client (docs/vendor-contract.md §1): authentication, users and departments.

The wire choices marked [designed] in the contract (key names, ``token_expiry_date`` format, error
codes) live in this module and in :mod:`syncd.vendors.whosoff_models`, nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import SecretStr

from syncd.config import WhosOffSettings
from syncd.errors import (
    ProtocolError,
    RejectedError,
    TokenExpiredError,
    TransientError,
    VendorConfigError,
    VendorError,
)
from syncd.vendors.common import InvalidRecord, consume, split_records
from syncd.vendors.credentials import Clock, Grant, WhosOffTokenManager, with_renewal
from syncd.vendors.transport import Transport, read_bounded
from syncd.vendors.whosoff_models import WhosOffDepartment, WhosOffUser, parse_department, parse_user

VENDOR = "whosoff"
__all__ = ["WhosOffAuth", "WhosOffClient", "WhosOffDepartment", "WhosOffUser", "make_nonce", "request_secret"]
NONCE_LENGTH = 32
_NONCE_ALPHABET = string.ascii_letters + string.digits

# ------------------------------------------------------------------------------------------ errors

#: the error code of an invalid or expired token (HTTP 401 means the same)
_EXPIRED_CODE = "TOK004"
#: the error code of a nonce the vendor has seen before (answered with a fresh nonce, never raised out)
_NONCE_REUSED = "AUTH003"
#: AUTH codes that mean our configuration is wrong, with the keys to check
_CONFIG_CODES = {
    "AUTH001": "invalid username or password: check whosoff.username / whosoff.password",
    "AUTH002": "the request secret does not match: check whosoff.client_secret",
    "AUTH004": "this IP address is not permitted: check whosoff.ip_address and the allowed IPs in "
    "WhosOff's Company Settings",
    "AUTH005": "unknown app id: check whosoff.app_id",
    "AUTH006": "the nonce was refused as malformed (a syncd bug; please report it)",
}
#: HTTP statuses that mean our configuration is wrong when no code says more: (message, carry the code)
_CONFIG_STATUS = {
    403: ("forbidden: the WhosOff API user lacks access to this call", True),
    404: (
        "endpoint not found: check whosoff.url and whosoff.api_path (`syncd doctor --vendor whosoff`)",
        False,
    ),
}


class _NonceReused(Exception):
    pass


def _fault(status: int, errors: list[tuple[str, str]], kw: dict[str, Any]) -> Exception | None:
    """The exception for a reply, looked up in the tables above (``None``: the reply is a success).

    Precedence: server error, expired token, reused nonce, configuration code, configuration status,
    anything else that is an error.
    """
    codes = [c for c, _ in errors]
    first_code, first_message = errors[0] if errors else ("", "")
    if status >= 500:
        return TransientError(VENDOR, "server error", code=first_code or None, **kw)
    if status == 401 or _EXPIRED_CODE in codes:
        return TokenExpiredError(VENDOR, "token invalid or expired", code=_EXPIRED_CODE, **kw)
    if _NONCE_REUSED in codes:
        return _NonceReused()
    config = next((c for c in codes if c in _CONFIG_CODES), None)
    if config is not None:
        return VendorConfigError(VENDOR, _CONFIG_CODES[config], code=config, **kw)
    if status in _CONFIG_STATUS:
        message, with_code = _CONFIG_STATUS[status]
        return VendorConfigError(VENDOR, message, code=(first_code or None) if with_code else None, **kw)
    if status >= 400 or errors:
        return RejectedError(VENDOR, first_message or "request rejected", code=first_code or None, **kw)
    return None


# -------------------------------------------------------------------------------------- wire level


def make_nonce() -> str:
    """32 characters from :mod:`secrets`: never reused in practice (190 bits of randomness)."""
    nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
    assert len(nonce) == NONCE_LENGTH
    return nonce


def request_secret(nonce: str, client_secret: str) -> str:
    """``secret`` = lowercase hex SHA-512 of ``nonce + client_secret`` (UTF-8)."""
    return hashlib.sha512((nonce + client_secret).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Reply:
    status: int
    data: list[Any]
    errors: list[tuple[str, str]]


class _Wire:
    """Requests and replies: JSON envelopes, error codes → :mod:`syncd.errors`."""

    def __init__(self, transport: Transport, settings: WhosOffSettings, wall: Clock) -> None:
        self.transport = transport
        self.settings = settings
        #: unix time, to turn ``token_expiry_date`` into a lifetime
        self.wall = wall
        self.root = settings.api_root

    async def call(
        self,
        http_method: str,
        path: str,
        method: str,
        *,
        body: dict[str, Any] | None,
        token: SecretStr | None,
        attempt: int,
    ) -> list[Any]:
        headers = {
            "app-id": self.settings.app_id,
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip",
        }
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        data = json.dumps(body).encode() if body is not None else None

        async def handle(resp: aiohttp.ClientResponse) -> _Reply:
            raw = await read_bounded(resp, VENDOR, method, self.settings.max_response_bytes)
            return self._reply(resp, raw, method)

        reply = await self.transport.request(
            http_method, self.root + path, method=method, handle=handle, headers=headers, data=data,
            attempt=attempt,
        )  # fmt: skip
        return reply.data

    def _reply(self, resp: aiohttp.ClientResponse, raw: bytes, method: str) -> _Reply:
        status = resp.status
        kw: dict[str, Any] = {"method": method, "status": status}
        envelope: Any = None
        try:
            envelope = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: hostile nesting
            if status < 400:
                raise ProtocolError(VENDOR, "response is not valid JSON", **kw) from None
        errors: list[tuple[str, str]] = []
        data: list[Any] = []
        if isinstance(envelope, dict):
            for err in envelope.get("Errors") or []:
                if isinstance(err, dict):
                    errors.append((str(err.get("Code", "")), str(err.get("Message", ""))[:200]))
            d = envelope.get("Data")
            data = d if isinstance(d, list) else []
        fault = _fault(status, errors, kw)
        if fault is not None:
            raise fault
        if not isinstance(envelope, dict) or not isinstance(envelope.get("Data"), list):
            raise ProtocolError(VENDOR, "response has no Data array", **kw)
        return _Reply(status, data, errors)

    async def authenticate(self, action: str, fields: dict[str, Any]) -> Grant:
        """One authenticate call with a fresh nonce (and one more if the nonce was called reused)."""
        method = f"authenticate/{action}"

        async def attempt(n: int) -> list[Any]:
            for _ in range(2):
                nonce = make_nonce()
                body = {
                    **fields,
                    "ip_address": self.settings.ip_address,
                    "nonce": nonce,
                    "secret": request_secret(nonce, self.settings.client_secret.get_secret_value()),
                    "app_id": self.settings.app_id,
                }
                try:
                    return await self.call(
                        "POST", f"/authenticate/{action}", method, body=body, token=None, attempt=n
                    )
                except _NonceReused:
                    continue
            raise VendorError(
                VENDOR, "nonce refused as already used twice in a row", code="AUTH003", method=method
            )

        data = await self.transport.retrying(method, attempt)
        return _grant(data, method, self.wall())


def _grant(data: list[Any], method: str, now: float) -> Grant:
    try:
        token = data[0]["token"]
        value = token["access_token"]
        expiry = datetime.fromisoformat(str(token["token_expiry_date"]))
    except (IndexError, KeyError, TypeError, ValueError):
        raise ProtocolError(
            VENDOR, "authenticate response lacks token/token_expiry_date", method=method
        ) from None
    if not isinstance(value, str) or not value:
        raise ProtocolError(VENDOR, "authenticate response has an empty access_token", method=method)
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return Grant(SecretStr(value), expiry.timestamp() - now)


class WhosOffAuth:
    """The :class:`~syncd.vendors.credentials.TokenIssuer` for WhosOff."""

    def __init__(self, wire: _Wire) -> None:
        self._wire = wire

    async def with_credentials(self) -> Grant:
        s = self._wire.settings
        return await self._wire.authenticate(
            "with-credentials", {"username": s.username, "password": s.password.get_secret_value()}
        )

    async def with_access_token(self, token: SecretStr) -> Grant:
        return await self._wire.authenticate("with-access-token", {"access_token": token.get_secret_value()})


# ------------------------------------------------------------------------------------------ client


class WhosOffClient:
    """Users and departments from WhosOff.  The caller owns ``session``.

    ``tokens`` may be shared between clients (and kept alive by the daemon); by default the client
    makes its own, available as :attr:`tokens`, on ``clock`` (monotonic) and ``wall`` (unix time).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: WhosOffSettings,
        *,
        tokens: WhosOffTokenManager | None = None,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.settings = settings
        self._transport = Transport(VENDOR, session, settings)
        self._wire = _Wire(self._transport, settings, wall)
        self.tokens = tokens or WhosOffTokenManager(settings, WhosOffAuth(self._wire), clock=clock, wall=wall)

    async def get_users(self, status_id: int = 99) -> tuple[list[WhosOffUser], list[InvalidRecord]]:
        """Every user of the company (``status_id`` 0 disabled, 1 active, 99 both) in one response."""
        body = {"map_type_id": 0, "map_id": 0, "status_id": status_id}
        data = await self._data_call("POST", "/user/retrieve", "user/retrieve", body)
        return split_records(list(consume(data, lambda r: parse_user(r, self.settings.email_field))))

    async def raw_users(self) -> list[Any]:
        """The user list as the service sends it (for ``syncd doctor``, which shows key names only)."""
        body = {"map_type_id": 0, "map_id": 0, "status_id": 99}
        return await self._data_call("POST", "/user/retrieve", "user/retrieve", body)

    async def get_departments(self) -> tuple[list[WhosOffDepartment], list[InvalidRecord]]:
        data = await self._data_call("GET", "/department/retrieve/", "department/retrieve", None)
        return split_records([parse_department(r) for r in data])

    async def _data_call(
        self, http_method: str, path: str, method: str, body: dict[str, Any] | None
    ) -> list[Any]:
        """A data call with a valid token; on TOK004/401 one token renewal and one more try."""

        async def call(token: SecretStr) -> list[Any]:
            async def attempt(n: int) -> list[Any]:
                return await self._wire.call(http_method, path, method, body=body, token=token, attempt=n)

            return await self._transport.retrying(method, attempt)

        return await with_renewal(self.tokens, call)
