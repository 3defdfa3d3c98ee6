"""The sandbox: the three vendor sub-applications and ``/_sandbox`` on one aiohttp server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from . import infinityhr as ihr
from . import whosoff as wo
from . import workbox as wb
from .console import populate_by_hand
from .control import ControlAPI
from .data import Company, generate_company
from .dialect import Dialect, WorkboxDialect
from .faults import VENDORS, FaultInjector, Faults
from .infinityhr import InfinityHRService
from .mutations import mutate
from .reqlog import RequestLog
from .whosoff import WhosOffService
from .workbox import WorkboxService
from .workbox_store import WorkboxState


@dataclass
class SandboxOptions:
    employees: int = 500
    seed: int = 1
    host: str = "127.0.0.1"
    port: int = 8780
    signature: str = "v1"
    whosoff_token_lifetime: float = 3600.0
    infinityhr_idle_timeout: float = 1200.0
    whosoff_overlap: float = 0.8
    whosoff_only: int = 5
    faults: dict[str, Faults] = field(default_factory=dict)
    shutdown_timeout: float = 2.0
    #: another vendor dialect (:mod:`.dialect`); its WORKBOX signature replaces ``signature``
    dialect: Dialect | None = None
    #: members made by hand in WORKBOX before syncd (the first N active employees, their departments,
    #: grades and positions, and three contractors HR does not know), without external keys
    prepopulated: int = 0


SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "infinityhr": {
        "vendor_id": ihr.VENDOR_ID,
        "vendor_password": ihr.VENDOR_PASSWORD,
        "company_id": ihr.COMPANY_ID,
    },
    "whosoff": {
        "app_id": wo.APP_ID,
        "client_secret": wo.CLIENT_SECRET,
        "username": wo.USERNAME,
        "password": wo.PASSWORD,
        "ip_address": wo.IP_ADDRESS,
    },
    "workbox": {
        "company_id": wb.COMPANY_ID,
        "api_key": wb.API_KEY,
        "access_key": wb.ACCESS_KEY,
        "secret_key": wb.SECRET_KEY,
    },
}


class Sandbox:
    """All three simulators over one company. Attributes are live: change them while it runs."""

    def __init__(self, options: SandboxOptions | None = None, company: Company | None = None) -> None:
        self.options = options = options or SandboxOptions()
        for vendor in options.faults:
            if vendor not in VENDORS:
                raise ValueError(f"unknown vendor {vendor!r} in faults")
        self.company = company or generate_company(
            options.employees, options.seed, options.whosoff_overlap, options.whosoff_only
        )
        self.request_log = RequestLog()
        self.faults: dict[str, Faults] = {v: replace(options.faults.get(v, Faults())) for v in VENDORS}
        self._stop = asyncio.Event()
        inject = {v: FaultInjector(v, self.faults, options.seed, self._stop) for v in VENDORS}
        self.dialect = options.dialect or Dialect(workbox=WorkboxDialect(signature=options.signature))
        self.whosoff = WhosOffService(
            self.company, self.request_log, inject["whosoff"], options.whosoff_token_lifetime,
            email_field=self.dialect.whosoff.email_field,
        )  # fmt: skip
        self.infinityhr = InfinityHRService(
            self.company, self.request_log, inject["infinityhr"], options.infinityhr_idle_timeout,
            dialect=self.dialect.infinityhr,
        )  # fmt: skip
        self.workbox = WorkboxService(
            self.request_log, inject["workbox"], self.dialect.workbox.signature,
            connections_off=self.dialect.workbox.connections_off,
        )  # fmt: skip
        if options.prepopulated:
            populate_by_hand(self.workbox.state, self.company, options.prepopulated)
        self.credentials = {k: dict(v) for k, v in SANDBOX_CREDENTIALS.items()}
        self.base_url = f"http://{options.host}:{options.port}"
        self._runner: web.AppRunner | None = None

    @property
    def workbox_state(self) -> WorkboxState:
        return self.workbox.state

    @property
    def whosoff_url(self) -> str:
        return f"{self.base_url}/whosoff"

    @property
    def infinityhr_url(self) -> str:
        return f"{self.base_url}/infinityhr/EmployeeService.asmx"

    @property
    def workbox_url(self) -> str:
        return f"{self.base_url}{wb.BASE_PATH}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_sandbox"

    def urls(self) -> dict[str, str]:
        return {
            "whosoff": self.whosoff_url,
            "infinityhr": self.infinityhr_url,
            "workbox": self.workbox_url,
            "control": self.control_url,
        }

    def mutate(self, op: str, **args: Any) -> dict[str, Any]:
        """Apply one HR mutation (see :mod:`syncd.sandbox.mutations`); raises MutationError."""
        return mutate(self.company, op, args)

    def app(self) -> web.Application:
        root = web.Application()
        root.add_routes(ControlAPI(self).routes())
        root.add_subapp("/whosoff", self.whosoff.app())
        root.add_subapp("/infinityhr", self.infinityhr.app())
        root.add_subapp("/workbox", self.workbox.app())
        return root

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=self.options.shutdown_timeout)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        host = self.options.host if ":" not in self.options.host else f"[{self.options.host}]"
        self.base_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self._stop.set()  # ends injected hangs at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def syncd_config_for(
    target: Sandbox | Mapping[str, Any], database_url: str, **sections: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """A syncd configuration (section → keys) pointing at a sandbox, like config/sandbox.toml.

    ``target`` is a running :class:`Sandbox` or its ``GET /_sandbox/`` index (``urls``,
    ``credentials``, ``signature``: a sandbox in another process); ``sections`` add or override keys
    per section.  Plain data: the sandbox knows nothing of syncd's settings classes.  The one builder
    of such a configuration (demo, tests and bench all use it)."""
    if isinstance(target, Sandbox):
        urls, creds, signature = target.urls(), target.credentials, target.options.signature
    else:
        urls, creds, signature = target["urls"], target["credentials"], target["signature"]
    config: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "infinityhr": {"url": urls["infinityhr"], **creds["infinityhr"]},
        "whosoff": {"url": urls["whosoff"], **creds["whosoff"]},
        "workbox": {"url": urls["workbox"], **creds["workbox"], "signature": signature},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


@asynccontextmanager
async def run_sandbox(
    options: SandboxOptions | None = None, company: Company | None = None
) -> AsyncIterator[Sandbox]:
    """Start a sandbox on ``options.host:options.port`` (port 0 = ephemeral) for the ``async with`` body."""
    sandbox = Sandbox(options, company)
    await sandbox.start()
    try:
        yield sandbox
    finally:
        await sandbox.stop()
