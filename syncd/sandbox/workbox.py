"""NAVER Cloud WORKBOX open API simulator: API Gateway signing + the directory writes.

Contract: docs/vendor-contract.md §3.

Mounted at ``/workbox``; its route
``/workbox/openapi/v1/organization/company/{companyId}/{kind}/{externalKey}`` makes the full path
equal the real default base path. Order of checks, as a gateway in front of a service would do them:
method (anything but POST/PUT/DELETE → 405, before authentication), gateway authentication (401
``errorCode 200``), console switches (``E901``, ``E903``), path (``E900``: wrong company id, unknown
kind, bad externalKey), body and rules (``E902``/``E904``). A wrong company id is answered ``E900``
(a path parameter error) rather than 401: the keys are valid, the path is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from email.utils import formatdate

from aiohttp import web
from aiohttp.typedefs import Middleware

from .faults import GATEWAY_ERRORS, FaultInjector, Handler, send_truncated_gzip, vendor_middleware
from .reqlog import RequestLog, set_code, set_op
from .workbox_store import KEY_RE, KINDS, WorkboxError, WorkboxState

COMPANY_ID = "578c7009-bdad-4493-9835-72302cf988c6"
API_KEY = "sbx-apigw-api-key-0001"
ACCESS_KEY = "SBXACCESSKEY00000001"
SECRET_KEY = "sbx-secret-key-0001"  # noqa: S105 (sandbox-only credential)
BASE_PATH = "/workbox/workbox/openapi/v1"
WINDOW_MS = 5 * 60 * 1000
_SUCCESS_BODY = json.dumps({"resultCode": "SUCCESS", "resultMessage": "success"}).encode()


def string_to_sign(variant: str, method: str, uri: str, timestamp: str, api_key: str, access_key: str) -> str:
    """v1 (the WORKBOX document) signs the api key line; v2 (NAVER's SDKs) does not."""
    if variant == "v1":
        return f"{method} {uri}\n{timestamp}\n{api_key}\n{access_key}"
    if variant == "v2":
        return f"{method} {uri}\n{timestamp}\n{access_key}"
    raise ValueError(f"unknown signature variant {variant!r}")


def expected_signature(
    variant: str, secret_key: str, method: str, uri: str, timestamp: str, api_key: str, access_key: str
) -> str:
    message = string_to_sign(variant, method, uri, timestamp, api_key, access_key)
    digest = hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature(
    variant: str,
    secret_key: str,
    signature: str,
    method: str,
    uri: str,
    timestamp: str,
    api_key: str,
    access_key: str,
) -> bool:
    expected = expected_signature(variant, secret_key, method, uri, timestamp, api_key, access_key)
    return hmac.compare_digest(expected.encode(), signature.encode())


class GatewayError(Exception):
    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


class WorkboxService:
    """Server side of WORKBOX. ``api_enabled``, ``basic_settings``, ``signature`` and ``clock_skew``
    (seconds, stored in the workbox :class:`Faults`) are mutable at run time."""

    def __init__(
        self,
        log: RequestLog,
        injector: FaultInjector,
        signature: str = "v1",
        *,
        connections_off: tuple[str, ...] = (),
    ) -> None:
        if signature not in ("v1", "v2"):
            raise ValueError("signature must be 'v1' or 'v2'")
        self.log = log
        self.injector = injector
        self.signature = signature
        self.company_id = COMPANY_ID
        self.api_key = API_KEY
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.api_enabled = True
        self.basic_settings = True
        #: kinds whose organisation connection is OFF in the console (contract §3.3): answered E903
        self.connections_off = set(connections_off)
        self.state = WorkboxState()
        self._date_second, self._date_text = -1, ""

    @property
    def clock_skew(self) -> float:
        return self.injector.faults.clock_skew

    @clock_skew.setter
    def clock_skew(self, seconds: float) -> None:
        self.injector.faults.clock_skew = float(seconds)

    def now(self) -> float:
        """The gateway's clock (epoch seconds), skew applied."""
        return time.time() + self.clock_skew

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._date_middleware(), vendor_middleware(self.injector, self.log, self)]
        )
        app.router.add_route(
            "*", "/workbox/openapi/v1/organization/company/{companyId}/{kind}/{externalKey}", self.resource
        )
        return app

    def _date(self) -> str:
        """The HTTP ``Date`` of the gateway clock (formatted once per second: every answer has one)."""
        second = int(self.now())
        if second != self._date_second:
            self._date_second, self._date_text = second, formatdate(second, usegmt=True)
        return self._date_text

    def _date_middleware(self) -> Middleware:
        @web.middleware
        async def date_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers["Date"] = self._date()
                raise
            response.headers["Date"] = self._date()
            return response

        return date_middleware

    # ---- responses ------------------------------------------------------------------------------
    def _result(self, request: web.Request, status: int, code: str, message: str) -> web.Response:
        set_code(request, code)
        return web.json_response({"resultCode": code, "resultMessage": message}, status=status)

    def _gateway(
        self, request: web.Request, status: int, code: str, message: str, details: str
    ) -> web.Response:
        set_code(request, code)
        return web.json_response(
            {"error": {"errorCode": code, "message": message, "details": details}}, status=status
        )

    def injected_error(self, request: web.Request) -> web.StreamResponse:
        return self._result(request, 500, "E1001", "Internal server error (sandbox fault)")

    def rate_limited(self, request: web.Request, retry_after: int) -> web.StreamResponse:
        resp = self._gateway(request, 429, "420", "Rate Limited", "too many requests")
        resp.headers["Retry-After"] = str(retry_after)
        return resp

    # ---- gateway ----------------------------------------------------------------------------------
    def authenticate(self, request: web.Request) -> None:
        h = request.headers
        timestamp = h.get("x-ncp-apigw-timestamp")
        api_key = h.get("x-ncp-apigw-api-key")
        access_key = h.get("x-ncp-iam-access-key")
        if self.signature == "v2":
            signature = h.get("x-ncp-apigw-signature-v2") or h.get("x-ncp-apigw-signature-v1")
        else:
            signature = h.get("x-ncp-apigw-signature-v1")
        header = "x-ncp-apigw-signature-v1" + (" or -v2" if self.signature == "v2" else "")
        for name, value in (
            ("x-ncp-apigw-timestamp", timestamp),
            ("x-ncp-apigw-api-key", api_key),
            ("x-ncp-iam-access-key", access_key),
            (header, signature),
        ):
            if not value:
                raise GatewayError(f"missing header {name}")
        assert timestamp and api_key and access_key and signature
        if not hmac.compare_digest(api_key.encode(), self.api_key.encode()):
            raise GatewayError("invalid api key")
        if not hmac.compare_digest(access_key.encode(), self.access_key.encode()):
            raise GatewayError("invalid access key")
        if not timestamp.isdigit():
            raise GatewayError("x-ncp-apigw-timestamp must be epoch milliseconds")
        if abs(int(timestamp) - self.now() * 1000) > WINDOW_MS:
            raise GatewayError("timestamp is more than 5 minutes away from the gateway clock")
        if not verify_signature(
            self.signature,
            self.secret_key,
            signature,
            request.method,
            request.raw_path,
            timestamp,
            api_key,
            access_key,
        ):
            raise GatewayError("signature does not match")

    # ---- resource ---------------------------------------------------------------------------------
    async def resource(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        set_op(request, kind)
        if request.method not in ("POST", "PUT", "DELETE"):
            set_code(request, "405")
            raise web.HTTPMethodNotAllowed(request.method, ["POST", "PUT", "DELETE"])
        injected = self.injector.take_gateway_error()
        if injected is not None:
            status, message = GATEWAY_ERRORS[injected]
            return self._gateway(request, status, injected, message, "sandbox fault: gateway_error")
        try:
            self.authenticate(request)
        except GatewayError as exc:
            return self._gateway(request, 401, "200", "Authentication Failed", exc.details)
        try:
            if not self.api_enabled:
                raise WorkboxError("E901", "the open API is switched off in the WORKBOX console")
            if not self.basic_settings:
                raise WorkboxError("E903", "basic settings are set to NO")
            if kind in self.connections_off:
                raise WorkboxError("E903", f"the organisation connection for {kind} is OFF")
            if request.match_info["companyId"] != self.company_id:
                raise WorkboxError("E900", "companyId does not match this company")
            if kind not in KINDS:
                raise WorkboxError("E900", f"unknown resource kind {kind}")
            key = request.match_info["externalKey"]
            if not KEY_RE.fullmatch(key):
                raise WorkboxError("E900", "externalKey must match [A-Za-z0-9._-]{1,36}")
            body: object = None
            if request.method != "DELETE":
                if request.content_type != "application/json":
                    raise WorkboxError("E902", "Content-Type must be application/json")
                try:
                    body = json.loads(await request.read())
                except (ValueError, UnicodeDecodeError) as exc:
                    raise WorkboxError("E902", "request body is not valid JSON") from exc
            status = self.state.apply(request.method, kind, key, body)
        except WorkboxError as err:
            return self._result(request, err.status, err.code, err.message)
        return await self._success(request, status)

    async def _success(self, request: web.Request, status: int) -> web.StreamResponse:
        body = _SUCCESS_BODY
        headers = {"Content-Type": "application/json"}
        corrupt = self.injector.take_corrupt()
        if corrupt in ("malformed", "entity_expansion"):
            body = body[: len(body) // 2]
        elif corrupt == "truncated_gzip":
            return await send_truncated_gzip(request, body, "application/json", status)
        return web.Response(status=status, body=body, headers=headers)
