"""Sandbox-only inspection and control routes under ``/_sandbox`` (JSON; no faults, not logged).

- ``GET  /_sandbox/`` → URLs and credentials
- ``GET  /_sandbox/workbox/state`` → ``{"dept": {key: body}, "user": …, "job-grade": …, "job-position": …}``
- ``POST /_sandbox/workbox/settings`` ``{"api_enabled","basic_settings","signature","clock_skew"}`` (partial)
- ``POST /_sandbox/workbox/reset`` → empties the WORKBOX directory
- ``GET|POST /_sandbox/workbox/mapping-form?kind=K`` → the console's mapping form (xlsx) of the
  hand-made entities; POST uploads a filled one (:mod:`.console`)
- ``GET  /_sandbox/requests`` (optional filters ``vendor``, ``method``, ``status``, ``code``, ``op``,
  ``path_contains``), ``GET /_sandbox/requests/summary``, ``POST /_sandbox/requests/reset``
- ``GET|POST /_sandbox/faults/{vendor}`` → the vendor's fault settings (POST = partial update)
- ``POST /_sandbox/whosoff/revoke`` → revokes every WhosOff token
- ``POST /_sandbox/whosoff/settings`` ``{"token_lifetime","renew_window"}``
- ``POST /_sandbox/infinityhr/settings`` ``{"idle_timeout"}``; ``POST /_sandbox/infinityhr/expire-sessions``
- ``POST /_sandbox/hr/mutate`` ``{"op": …, …args}`` (``"count": N``: the op on N employees at once);
  ``GET /_sandbox/hr/employees``; ``GET /_sandbox/hr/departments``; ``GET /_sandbox/whosoff/users``

docs/sandbox.md documents them for a person driving the sandbox by hand.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .console import FORM_COLUMNS, by_hand, mapping_form, upload_form
from .faults import VENDORS
from .mutations import MutationError, mutate_many
from .workbox_store import KINDS, WorkboxError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

if TYPE_CHECKING:
    from .app import Sandbox


def _default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda d: json.dumps(d, default=_default, ensure_ascii=False)
    )


def _bad(message: str) -> web.Response:
    return _json({"error": message}, status=400)


async def _object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body is not JSON"}), content_type="application/json"
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
        )
    return data


def _number(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{key} must be a non-negative number"}),
            content_type="application/json",
        )
    return float(value)


class ControlAPI:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sandbox/", self.index),
            web.get("/_sandbox/workbox/state", self.workbox_state),
            web.post("/_sandbox/workbox/settings", self.workbox_settings),
            web.post("/_sandbox/workbox/reset", self.workbox_reset),
            web.get("/_sandbox/workbox/mapping-form", self.mapping_form),
            web.post("/_sandbox/workbox/mapping-form", self.mapping_upload),
            web.post("/_sandbox/workbox/by-hand", self.workbox_by_hand),
            web.get("/_sandbox/requests", self.requests),
            web.get("/_sandbox/requests/summary", self.requests_summary),
            web.post("/_sandbox/requests/reset", self.requests_reset),
            web.get("/_sandbox/faults/{vendor}", self.faults),
            web.post("/_sandbox/faults/{vendor}", self.faults),
            web.post("/_sandbox/whosoff/revoke", self.whosoff_revoke),
            web.post("/_sandbox/whosoff/settings", self.whosoff_settings),
            web.get("/_sandbox/whosoff/users", self.whosoff_users),
            web.post("/_sandbox/infinityhr/settings", self.infinityhr_settings),
            web.post("/_sandbox/infinityhr/expire-sessions", self.infinityhr_expire),
            web.post("/_sandbox/hr/mutate", self.mutate),
            web.get("/_sandbox/hr/employees", self.employees),
            web.get("/_sandbox/hr/departments", self.departments),
        ]

    async def index(self, request: web.Request) -> web.Response:
        sb = self.sb
        return _json(
            {
                "urls": sb.urls(),
                "credentials": sb.credentials,
                "signature": sb.workbox.signature,
                "employees": len(sb.company.employees),
                "seed": sb.options.seed,
            }
        )

    async def workbox_state(self, request: web.Request) -> web.Response:
        return _json(self.sb.workbox_state.to_json())

    async def workbox_settings(self, request: web.Request) -> web.Response:
        data = await _object(request)
        wb = self.sb.workbox
        for key in data:
            if key not in ("api_enabled", "basic_settings", "signature", "clock_skew", "connections"):
                return _bad(f"unknown setting {key!r}")
        for key in ("api_enabled", "basic_settings"):
            if key in data:
                if not isinstance(data[key], bool):
                    return _bad(f"{key} must be a boolean")
                setattr(wb, key, data[key])
        if "signature" in data:
            if data["signature"] not in ("v1", "v2"):
                return _bad("signature must be v1 or v2")
            wb.signature = data["signature"]
        if "connections" in data:  # the console's per-kind switches: {"user": false, ...}
            switches = data["connections"]
            if not isinstance(switches, dict) or not all(
                k in KINDS and isinstance(v, bool) for k, v in switches.items()
            ):
                return _bad(f"connections must map kinds ({', '.join(KINDS)}) to true (ON) or false (OFF)")
            for kind, on in switches.items():
                (wb.connections_off.discard if on else wb.connections_off.add)(kind)
        if "clock_skew" in data:
            if not isinstance(data["clock_skew"], int | float) or isinstance(data["clock_skew"], bool):
                return _bad("clock_skew must be a number")
            wb.clock_skew = float(data["clock_skew"])
        return _json(
            {
                "api_enabled": wb.api_enabled,
                "basic_settings": wb.basic_settings,
                "signature": wb.signature,
                "clock_skew": wb.clock_skew,
                "connections": {kind: kind not in wb.connections_off for kind in KINDS},
            }
        )

    async def mapping_form(self, request: web.Request) -> web.Response:
        kind = request.query.get("kind", "")
        if kind not in FORM_COLUMNS:
            return _bad(f"kind must be one of {', '.join(FORM_COLUMNS)}")
        body = mapping_form(self.sb.workbox_state, kind)
        disposition = {"Content-Disposition": f"attachment; filename={kind}.xlsx"}
        return web.Response(body=body, content_type=XLSX, headers=disposition)

    async def mapping_upload(self, request: web.Request) -> web.Response:
        kind = request.query.get("kind", "")
        if kind not in FORM_COLUMNS:
            return _bad(f"kind must be one of {', '.join(FORM_COLUMNS)}")
        try:
            return _json(upload_form(self.sb.workbox_state, kind, await request.read()))
        except WorkboxError as exc:
            return _bad(exc.message)

    async def workbox_by_hand(self, request: web.Request) -> web.Response:
        """``{"action": "delete"|"edit", "kind": K, "keys": [...] | "count": N, "fields": {...}}``: an
        admin's change in WORKBOX (``count``: the first N keys the API can address, in key order)."""
        data = await _object(request)
        action, kind, fields = data.get("action"), data.get("kind"), data.get("fields") or {}
        if action not in ("delete", "edit") or kind not in KINDS:
            return _bad(f"action must be delete or edit, kind one of {', '.join(KINDS)}")
        if action == "edit" and (not isinstance(fields, dict) or not fields):
            return _bad("edit needs fields: an object of body fields to set")
        keys = data.get("keys")
        if keys is None:
            if "count" not in data:
                return _bad("give keys (a list of external keys) or count")
            count = int(_number(data, "count"))
            keys = [k for k in sorted(self.sb.workbox_state[kind]) if not k.startswith("~")][:count]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            return _bad("keys must be a list of external keys")
        try:
            return _json({**by_hand(self.sb.workbox_state, action, kind, keys, fields), "keys": keys})
        except WorkboxError as exc:
            return _bad(exc.message)

    async def workbox_reset(self, request: web.Request) -> web.Response:
        self.sb.workbox_state.clear()
        return _json({"reset": True})

    async def requests(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status")
        entries = self.sb.request_log.matching(
            vendor=q.get("vendor"),
            method=q.get("method"),
            path_contains=q.get("path_contains"),
            status=int(status) if status and status.isdigit() else None,
            code=q.get("code"),
            op=q.get("op"),
        )
        return _json(entries)

    async def requests_summary(self, request: web.Request) -> web.Response:
        return _json(self.sb.request_log.summary())

    async def requests_reset(self, request: web.Request) -> web.Response:
        self.sb.request_log.reset()
        return _json({"reset": True})

    async def faults(self, request: web.Request) -> web.Response:
        vendor = request.match_info["vendor"]
        if vendor not in VENDORS:
            return _json({"error": f"vendor must be one of {', '.join(VENDORS)}"}, status=404)
        faults = self.sb.faults[vendor]
        if request.method == "POST":
            try:
                faults.update(await _object(request))
            except ValueError as exc:
                return _bad(str(exc))
        return _json(faults.to_json())

    async def whosoff_revoke(self, request: web.Request) -> web.Response:
        return _json({"revoked": self.sb.whosoff.revoke_all()})

    async def whosoff_settings(self, request: web.Request) -> web.Response:
        data = await _object(request)
        wo = self.sb.whosoff
        for key in data:
            if key not in ("token_lifetime", "renew_window"):
                return _bad(f"unknown setting {key!r}")
            setattr(wo, key, _number(data, key))
        return _json({"token_lifetime": wo.token_lifetime, "renew_window": wo.renew_window})

    async def whosoff_users(self, request: web.Request) -> web.Response:
        return _json(
            [
                {**u.to_json(), "sandbox_employee_id": u.employee_id}
                for u in self.sb.company.whosoff_users.values()
            ]
        )

    async def infinityhr_settings(self, request: web.Request) -> web.Response:
        data = await _object(request)
        for key in data:
            if key != "idle_timeout":
                return _bad(f"unknown setting {key!r}")
            self.sb.infinityhr.idle_timeout = _number(data, key)
        return _json({"idle_timeout": self.sb.infinityhr.idle_timeout})

    async def infinityhr_expire(self, request: web.Request) -> web.Response:
        return _json({"expired": self.sb.infinityhr.expire_sessions()})

    async def mutate(self, request: web.Request) -> web.Response:
        data = await _object(request)
        op = data.pop("op", None)
        if not isinstance(op, str):
            return _bad("op is required")
        try:
            if "count" in data:
                return _json(mutate_many(self.sb.company, op, data))
            return _json(self.sb.mutate(op, **data))
        except MutationError as exc:
            return _bad(str(exc))

    async def employees(self, request: web.Request) -> web.Response:
        return _json([asdict(e) for e in self.sb.company.employee_list()])

    async def departments(self, request: web.Request) -> web.Response:
        return _json([asdict(d) for d in self.sb.company.departments.values()])
