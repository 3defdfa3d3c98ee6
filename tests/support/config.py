"""The one way tests and bench build a syncd configuration pointing at a sandbox.

:func:`syncd.sandbox.syncd_config_for` gives the sandbox's URLs and credentials; on top of it come
named *layers* (section → keys overrides, applied in order, each updating its sections key by key)
and finally per-call ``sections``.  Every layer here was a hand-built config somewhere before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from syncd.config import Settings
from syncd.config.render import render_toml
from syncd.sandbox import Sandbox, syncd_config_for

Layer = Mapping[str, Mapping[str, Any]]

#: quick retries, so a test that injects faults does not wait for production backoff
FAST = {"retry_backoff_initial": 0.05, "retry_backoff_max": 0.2, "retry_attempts": 3, "timeout": 10.0}

#: re-assertion (drift repair) off: a cycle without changes then sends nothing, which most tests
#: check; tests/engine/test_drift.py and the benchmarks run it as configured by default
NO_REASSERT = {"reassert_days": 0}

#: every cycle reads both sources whole (the default reads only InfinityHR's changes between full
#: reads, sync.full_every = "6h"): most tests change HR and expect the next cycle to see everything;
#: tests/engine/test_incremental_reads.py, the demo and the benchmarks run the default cadence
FULL_READS = {"full_every": "0"}

#: in-process engine tests: fast retries, an unthrottled WORKBOX
TESTS: Layer = {
    "infinityhr": FAST,
    "whosoff": FAST,
    "workbox": {**FAST, "requests_per_second": 2000.0},
    "sync": {**NO_REASSERT, **FULL_READS},
}

#: a ``syncd`` command run by a test as a subprocess (JSON logs, two WORKBOX workers)
COMMAND: Layer = {
    "workbox": {"max_concurrency": 2, "requests_per_second": 1000.0},
    "log": {"format": "json"},
    "sync": FULL_READS,
}

#: deletes are never held
LENIENT_DELETES: Layer = {"sync": {"max_deletes": 1000, "max_delete_ratio": 1.0}}

#: ``syncd run`` as a daemon under test: TESTS plus a short schedule and lease, health on a free port
DAEMON: Layer = {
    **TESTS,
    "sync": {"schedule": "2s", "lease_period": 3.0, "lease_wait": 0.0, **NO_REASSERT, **FULL_READS},
    "server": {"listen": "127.0.0.1:0", "shutdown_timeout": 5.0},
    "log": {"level": "info", "format": "json"},
}

_CAMPAIGN_FAST = {"retry_backoff_initial": 0.05, "retry_backoff_max": 0.3}

#: the reliability campaigns, in process: small InfinityHR pages, fast retries, deletes not held
CAMPAIGN: Layer = {
    "infinityhr": {**_CAMPAIGN_FAST, "page_size": 20},
    "whosoff": _CAMPAIGN_FAST,
    "workbox": {**_CAMPAIGN_FAST, "requests_per_second": 1000.0},
    "sync": {**LENIENT_DELETES["sync"], **NO_REASSERT, **FULL_READS},
}

#: the reliability campaigns' ``syncd`` subprocesses: CAMPAIGN plus two workers, a short lease,
#: debug JSON logs (the leak scan reads every line)
CAMPAIGN_PROCESS: Layer = {
    "workbox": {"max_concurrency": 2},
    "sync": {"lease_period": 2, "lease_wait": 20},
    "log": {"format": "json", "level": "debug"},
}


def merged(*layers: Layer) -> dict[str, dict[str, Any]]:
    """The layers applied in order, section by section (later keys win)."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for name, values in layer.items():
            out.setdefault(name, {}).update(values)
    return out


def _layers(base: Layer | Iterable[Layer]) -> list[Layer]:
    return [base] if isinstance(base, Mapping) else list(base)


def config_for(
    sb: Sandbox, db_url: str, *, base: Layer | Iterable[Layer] = (TESTS,), **sections: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The configuration (section → keys) for ``sb``: the ``base`` layers, then ``sections``."""
    return syncd_config_for(sb, db_url, **merged(*_layers(base), sections))


def settings_for(
    sb: Sandbox, db_url: str, *, base: Layer | Iterable[Layer] = (TESTS,), **sections: Mapping[str, Any]
) -> Settings:
    """In-process :class:`Settings` of :func:`config_for`."""
    return Settings.model_validate(config_for(sb, db_url, base=base, **sections))


def config_text(
    sb: Sandbox, db_url: str, *, base: Layer | Iterable[Layer] = (TESTS,), **sections: Mapping[str, Any]
) -> str:
    """:func:`config_for` as TOML."""
    return render_toml(config_for(sb, db_url, base=base, **sections))


def write_config(
    path: Path,
    sb: Sandbox,
    db_url: str,
    *,
    base: Layer | Iterable[Layer] = (TESTS,),
    **sections: Mapping[str, Any],
) -> Path:
    """:func:`config_text` written to ``path``; returns ``path``."""
    path.write_text(config_text(sb, db_url, base=base, **sections))
    return path


def merge_config(into: dict[str, Any], fix: Mapping[str, Any]) -> None:
    """Apply ``fix`` (section → key → value, tables nested as in the file) onto ``into``, in place:
    what an operator does with the lines ``syncd doctor`` prints."""
    for key, value in fix.items():
        if isinstance(value, Mapping):
            merge_config(into.setdefault(key, {}), value)
        else:
            into[key] = value
