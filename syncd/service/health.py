"""Health and metrics over HTTP (aiohttp.web on ``server.listen``), and the ``syncd healthcheck`` probe.

* ``GET /healthz`` — 200 while the process runs its event loop.
* ``GET /readyz``  — 200 when the database answers and the last successful sync (by any replica: it
  is read from ``sync_runs``) finished less than ``server.max_staleness`` seconds ago; else 503.
  The body is JSON saying which check failed.
* ``GET /metrics`` — Prometheus text format from :data:`syncd.metrics.REGISTRY`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import sqlalchemy as sa
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from syncd import metrics
from syncd.config import Settings
from syncd.db.models import SyncRun
from syncd.errors import ConfigError
from syncd.states import RunResult

log = structlog.get_logger("syncd.service.health")

DB_TIMEOUT = 5.0


@dataclass
class Readiness:
    ready: bool
    database: str
    last_success: dt.datetime | None
    age: float | None

    def as_dict(self, max_staleness: float) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "database": self.database,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "age_seconds": None if self.age is None else round(self.age, 3),
            "max_staleness": max_staleness,
        }


async def last_success(engine: AsyncEngine) -> dt.datetime | None:
    """When the most recent successful sync finished (any process), from ``sync_runs``."""
    async with asyncio.timeout(DB_TIMEOUT), engine.connect() as conn:
        value: dt.datetime | None = await conn.scalar(
            sa.select(SyncRun.finished_at)
            .where(SyncRun.result == RunResult.SUCCESS, SyncRun.finished_at.is_not(None))
            .order_by(SyncRun.finished_at.desc())
            .limit(1)
        )
    return value


async def readiness(engine: AsyncEngine, max_staleness: float) -> Readiness:
    try:
        last = await last_success(engine)
    except Exception as exc:  # any failure to read the database means "not ready"
        return Readiness(False, f"unreachable: {type(exc).__name__}", None, None)
    if last is None:
        return Readiness(False, "ok", None, None)
    age = (dt.datetime.now(dt.UTC) - last).total_seconds()
    return Readiness(age <= max_staleness, "ok", last, age)


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class HealthServer:
    """The HTTP endpoints; ``status`` adds daemon facts (lease, running cycle) to ``/readyz``."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, status: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.status = status or dict
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(self, _: web.Request) -> web.Response:
        max_staleness = self.settings.server.max_staleness
        r = await readiness(self.engine, max_staleness)
        if r.last_success is not None:
            ts = r.last_success.timestamp()
            current = metrics.REGISTRY.get_sample_value("syncd_last_success_timestamp_seconds") or 0.0
            if ts > current:
                metrics.LAST_SUCCESS.set(ts)  # another replica's success counts for the gauge too
        body = {**r.as_dict(max_staleness), **self.status()}
        return web.json_response(body, status=200 if r.ready else 503)

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start(self) -> None:
        host, port = split_listen(self.settings.server.listen)
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                [("", "server.listen", f"cannot listen on {self.settings.server.listen}: {exc.strerror}")]
            ) from None
        self._runner = runner
        address = runner.addresses[0]
        self.address = (str(address[0]), int(address[1]))
        log.info("health.listening", host=self.address[0], port=self.address[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def probe_url(settings: Settings) -> str:
    host, port = split_listen(settings.server.listen)
    if host in ("", "0.0.0.0"):  # noqa: S104 (a wildcard listen address is probed on loopback)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/readyz"


async def healthcheck(
    settings: Settings | None, url: str | None = None, wait_s: float = 5.0
) -> tuple[bool, str]:
    """Ask a running daemon's ``/readyz`` (``url``, else from ``server.listen``): (ready, one line)."""
    if url is None:
        if settings is None:
            raise ValueError("healthcheck needs settings or a URL")
        url = probe_url(settings)
    started = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=wait_s)) as http,
            http.get(url) as resp,
        ):
            text = await resp.text()
            ok = resp.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return False, f"{url}: no answer ({type(exc).__name__}: {exc})"
    try:
        detail = json.loads(text)
    except ValueError:
        detail = text[:200]
    elapsed = round((time.monotonic() - started) * 1000)
    return ok, f"{url}: {'ready' if ok else 'not ready'} ({elapsed} ms) {json.dumps(detail)}"
