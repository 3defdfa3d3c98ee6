"""WhosOff v4 simulator: nonce + SHA-512 secret authentication, bearer tokens, data calls.

Contract: docs/vendor-contract.md §1.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .data import Company
from .faults import FaultInjector, send_truncated_gzip, vendor_middleware
from .reqlog import RequestLog, set_code, set_op

APP_ID = "SBXAPP0000000001"
CLIENT_SECRET = "sbx-client-secret-0001"  # noqa: S105 (sandbox-only credential)
USERNAME = "api@acme.example"
PASSWORD = "sbx-whosoff-pass"  # noqa: S105
IP_ADDRESS = "127.0.0.1"
API_USER = {
    "user_id": 1,
    "first_name": "Sync",
    "last_name": "Service",
    "email_address": USERNAME,
    "user_type_id": 300,
}


@dataclass
class Token:
    value: str
    login: str
    app_id: str
    issued: float
    expires: float
    revoked: bool = False


class WhosOffService:
    """Server side of WhosOff. ``token_lifetime`` and ``renew_window`` (seconds) and ``clock`` are mutable
    at run time."""

    def __init__(
        self,
        company: Company,
        log: RequestLog,
        injector: FaultInjector,
        token_lifetime: float = 3600.0,
        *,
        email_field: str = "email_contact",
    ) -> None:
        self.company = company
        #: the key a user's e-mail is served under (the dialect's; contract §1.3)
        self.email_field = email_field
        self.log = log
        self.injector = injector
        self.token_lifetime = token_lifetime
        self.renew_window = 86400.0
        #: unix time for issuing and checking tokens (a test may substitute a fake clock)
        self.clock: Callable[[], float] = time.time
        self.apps: dict[str, str] = {APP_ID: CLIENT_SECRET}  # app id -> client secret
        self.logins: dict[str, str] = {USERNAME: PASSWORD}
        self.allowed_ips: set[str] = {IP_ADDRESS}
        self.nonces: dict[str, set[str]] = {}
        self.tokens: dict[str, Token] = {}
        self.latest: dict[str, str] = {}  # login -> most recently issued token

    # ---- application -------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[vendor_middleware(self.injector, self.log, self)])
        app.router.add_post("/v4/authenticate/with-credentials", self.with_credentials)
        app.router.add_post("/v4/authenticate/with-access-token", self.with_access_token)
        app.router.add_post("/v4/user/retrieve", self.user_retrieve)
        app.router.add_get("/v4/department/retrieve/", self.department_retrieve)
        return app

    def revoke_all(self) -> int:
        count = 0
        for tok in self.tokens.values():
            if not tok.revoked:
                tok.revoked, count = True, count + 1
        return count

    # ---- responses ---------------------------------------------------------------------------
    async def _data(self, request: web.Request, data: list[Any]) -> web.StreamResponse:
        corrupt = self.injector.take_corrupt()
        if corrupt == "truncated_gzip":
            body = json.dumps({"Data": data, "Errors": []}, ensure_ascii=False).encode()
            return await send_truncated_gzip(request, body, "application/json; charset=utf-8")
        return self._respond(request, 200, data, [], corrupt=corrupt)

    def _respond(
        self,
        request: web.Request,
        status: int,
        data: list[Any],
        errors: list[dict[str, str]],
        *,
        corrupt: str | None = None,
    ) -> web.Response:
        body = json.dumps({"Data": data, "Errors": errors}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if corrupt in ("malformed", "entity_expansion"):
            body = body[: max(1, len(body) // 2)] + b"\x00<html>"
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return web.Response(status=status, body=body, headers=headers)

    def _error(self, request: web.Request, status: int, code: str, message: str) -> web.Response:
        set_code(request, code)
        return self._respond(request, status, [], [{"Code": code, "Message": message}])

    def injected_error(self, request: web.Request) -> web.StreamResponse:
        return self._error(request, 500, "SYS500", "Internal server error (sandbox fault)")

    def rate_limited(self, request: web.Request, retry_after: int) -> web.StreamResponse:
        resp = self._error(request, 429, "RATE429", "Too many requests")
        resp.headers["Retry-After"] = str(retry_after)
        return resp

    # ---- authentication ----------------------------------------------------------------------
    async def _body(self, request: web.Request, required: tuple[str, ...]) -> dict[str, Any] | web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return self._error(request, 400, "REQ001", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return self._error(request, 400, "REQ001", "Request body must be a JSON object")
        missing = [k for k in required if k not in body or body[k] is None]
        if missing:
            return self._error(request, 400, "REQ001", f"Missing required field(s): {', '.join(missing)}")
        return body

    def _check_client(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        app_id = request.headers.get("app-id")
        if app_id not in self.apps or body.get("app_id") != app_id:
            return self._error(request, 400, "AUTH005", "Unknown app id")
        if body.get("ip_address") not in self.allowed_ips:
            return self._error(request, 400, "AUTH004", "IP address not permitted")
        nonce = body.get("nonce")
        if not isinstance(nonce, str) or len(nonce) != 32:
            return self._error(request, 400, "AUTH006", "Nonce must be a 32-character string")
        used = self.nonces.setdefault(app_id, set())
        if nonce in used:
            return self._error(request, 400, "AUTH003", "Nonce already used")
        used.add(nonce)
        expected = hashlib.sha512((nonce + self.apps[app_id]).encode()).hexdigest()
        secret = body.get("secret")
        if not isinstance(secret, str) or not hmac.compare_digest(secret, expected):
            return self._error(request, 400, "AUTH002", "Secret does not match")
        return None

    def _issue(self, request: web.Request, login: str, app_id: str) -> web.Response:
        now = self.clock()
        tok = Token(secrets.token_urlsafe(32), login, app_id, now, now + self.token_lifetime)
        self.tokens[tok.value] = tok
        self.latest[login] = tok.value
        expiry = datetime.fromtimestamp(tok.expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        user = {**API_USER, "email_address": login}
        token = {"access_token": tok.value, "token_expiry_date": expiry}
        return self._respond(request, 200, [{"token": token, "user": user}], [])

    async def with_credentials(self, request: web.Request) -> web.StreamResponse:
        set_op(request, "with-credentials")
        body = await self._body(request, ("username", "password", "ip_address", "nonce", "secret", "app_id"))
        if isinstance(body, web.Response):
            return body
        problem = self._check_client(request, body)
        if problem is not None:
            return problem
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or self.logins.get(username) != password:
            return self._error(request, 400, "AUTH001", "Invalid username or password")
        return self._issue(request, username, body["app_id"])

    async def with_access_token(self, request: web.Request) -> web.StreamResponse:
        set_op(request, "with-access-token")
        body = await self._body(request, ("access_token", "ip_address", "nonce", "secret", "app_id"))
        if isinstance(body, web.Response):
            return body
        problem = self._check_client(request, body)
        if problem is not None:
            return problem
        tok = self.tokens.get(body["access_token"]) if isinstance(body["access_token"], str) else None
        if (
            tok is None
            or tok.revoked
            or tok.app_id != body["app_id"]
            or self.latest.get(tok.login) != tok.value
            or self.clock() - tok.issued > self.renew_window
        ):
            return self._error(request, 400, "TOK004", "Invalid token")
        return self._issue(request, tok.login, tok.app_id)

    # ---- data calls --------------------------------------------------------------------------
    def _check_token(self, request: web.Request) -> web.Response | None:
        app_id = request.headers.get("app-id")
        if app_id not in self.apps:
            return self._error(request, 400, "AUTH005", "Unknown app id")
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        tok = self.tokens.get(value.strip()) if scheme == "Bearer" else None
        if tok is None or tok.revoked or tok.app_id != app_id or self.clock() >= tok.expires:
            return self._error(request, 400, "TOK004", "Invalid token")
        return None

    async def user_retrieve(self, request: web.Request) -> web.StreamResponse:
        set_op(request, "user/retrieve")
        problem = self._check_token(request)
        if problem is not None:
            return problem
        if request.content_type != "application/json":
            return self._error(request, 400, "REQ001", "Content-Type must be application/json")
        body = await self._body(request, ("map_type_id", "map_id", "status_id"))
        if isinstance(body, web.Response):
            return body
        map_type, status = body["map_type_id"], body["status_id"]
        if not all(
            isinstance(body[k], int) and not isinstance(body[k], bool)
            for k in ("map_type_id", "map_id", "status_id")
        ):
            return self._error(request, 400, "REQ001", "map_type_id, map_id and status_id must be integers")
        if map_type != 0:
            return self._error(request, 400, "REQ001", f"map_type_id {map_type} is not supported")
        if status not in (0, 1, 99):
            return self._error(request, 400, "REQ001", "status_id must be 0, 1 or 99")
        users = [
            u.to_json(self.email_field)
            for u in self.company.whosoff_users.values()
            if status == 99 or u.status_id == status
        ]
        return await self._data(request, users)

    async def department_retrieve(self, request: web.Request) -> web.StreamResponse:
        set_op(request, "department/retrieve")
        problem = self._check_token(request)
        if problem is not None:
            return problem
        deps = [d.to_json() for d in self.company.whosoff_departments.values()]
        return await self._data(request, deps)
