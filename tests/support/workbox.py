"""What the sandbox's WORKBOX holds and was asked, in the shapes the tests compare."""

from __future__ import annotations

from typing import Any

from syncd.sandbox import Sandbox

State = dict[tuple[str, str], dict[str, Any]]


def workbox_state(sb: Sandbox) -> State:
    """Every WORKBOX object, keyed by (kind, external key)."""
    return {
        (kind, key): body for kind, objs in sb.workbox_state.to_json().items() for key, body in objs.items()
    }


def workbox_requests(sb: Sandbox, **filters: Any) -> int:
    """How many WORKBOX requests the sandbox received (``filters`` as for ``RequestLog.count``)."""
    return int(sb.request_log.count(vendor="workbox", **filters))
