"""The request log: one entry per vendor request, with counters for tests and ``/_sandbox/requests``."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, overload

from aiohttp import web

Entry = dict[str, Any]
LOG_ENTRY: web.RequestKey[Entry] = web.RequestKey("sandbox_log_entry", dict)


def set_code(request: web.Request, code: str | None, op: str | None = None) -> None:
    """Record the vendor error code (and optionally the operation) of the request being answered."""
    entry = request.get(LOG_ENTRY)
    if entry is None:
        return
    if code is not None:
        entry["code"] = code
    if op is not None:
        entry["op"] = op


def set_op(request: web.Request, op: str) -> None:
    entry = request.get(LOG_ENTRY)
    if entry is not None:
        entry["op"] = op


class RequestLog(Sequence[Entry]):
    """Entries ``{"vendor","method","path","raw_path","op","status","code","ts"}``.

    ``path`` is the route template (e.g. ``/whosoff/v4/user/retrieve``), ``raw_path`` the path and
    query as received, ``op`` the vendor operation (SOAP method for InfinityHR, ``kind`` for WORKBOX,
    the route's last part for WhosOff), ``status`` the HTTP status (0 while in flight or for a
    dropped connection), ``code`` the vendor error code (``TOK004``, ``InvalidSessionException``,
    ``E902``, gateway ``200``/``420``) or a sandbox marker (``DROP``, ``HANG``) or None.
    """

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        return self.entries[index]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def start(self, vendor: str, request: web.Request) -> Entry:
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        entry: Entry = {
            "vendor": vendor,
            "method": request.method,
            "path": template,
            "raw_path": request.raw_path,
            "op": None,
            "status": 0,
            "code": None,
            "ts": time.time(),
        }
        self.entries.append(entry)
        return entry

    def matching(
        self,
        vendor: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        status: int | None = None,
        code: str | None = None,
        op: str | None = None,
    ) -> list[Entry]:
        def ok(e: Entry) -> bool:
            return (
                (vendor is None or e["vendor"] == vendor)
                and (method is None or e["method"] == method.upper())
                and (path_contains is None or path_contains in e["raw_path"] or path_contains in e["path"])
                and (status is None or e["status"] == status)
                and (code is None or e["code"] == code)
                and (op is None or e["op"] == op)
            )

        return [e for e in self if ok(e)]

    def count(
        self,
        vendor: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        status: int | None = None,
        code: str | None = None,
        op: str | None = None,
    ) -> int:
        return len(self.matching(vendor, method, path_contains, status, code, op))

    def summary(self) -> dict[str, Any]:
        keys = Counter((e["vendor"], e["method"], e["path"], e["op"], e["status"], e["code"]) for e in self)
        return {
            "total": len(self),
            "by_vendor": dict(Counter(e["vendor"] for e in self)),
            "by_status": {str(k): v for k, v in Counter(e["status"] for e in self).items()},
            "counters": [
                {"vendor": v, "method": m, "path": p, "op": o, "status": s, "code": c, "count": n}
                for (v, m, p, o, s, c), n in keys.items()
            ],
        }

    def reset(self) -> None:
        self.entries.clear()
