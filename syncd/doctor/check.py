"""What a doctor check is, and running them: each vendor's checks in turn, each failure with its fix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from syncd.config import Settings
from syncd.config.render import render_toml
from syncd.errors import SyncdError

log = structlog.get_logger("syncd.doctor")

VENDORS = ("infinityhr", "whosoff", "workbox")


@dataclass
class Check:
    """One check: ``ok`` (or not), what was found, and the configuration that fixes a failure
    (section → key → value; ``infinityhr.methods`` is a section of its own)."""

    area: str
    name: str
    ok: bool
    detail: str
    fix: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what to do outside syncd's configuration (a console switch, a permission)
    hint: str | None = None

    def fix_text(self) -> str:
        return render_toml(self.fix) if self.fix else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "area": self.area, "check": self.name, "ok": self.ok, "detail": self.detail,
            "fix": self.fix, "fix_toml": self.fix_text() or None, "hint": self.hint,
        }  # fmt: skip


Checker = Callable[[Settings, aiohttp.ClientSession], Awaitable[list[Check]]]


def failed(area: str, name: str, exc: BaseException) -> Check:
    """A check that could not be made: the error says why (it never holds a secret)."""
    message = str(exc) if isinstance(exc, SyncdError) else f"{type(exc).__name__}: {exc}"
    return Check(area, name, False, message)


async def run_doctor(
    settings: Settings, vendors: Sequence[str] = VENDORS, on_check: Callable[[Check], None] = lambda c: None
) -> list[Check]:
    """Every check of ``vendors`` (and the database), in order; ``on_check`` sees each as it is made."""
    from syncd.doctor import database, infinityhr, whosoff, workbox

    checkers: dict[str, Checker] = {
        "infinityhr": infinityhr.checks, "whosoff": whosoff.checks, "workbox": workbox.checks,
    }  # fmt: skip
    out: list[Check] = []

    def add(checks: list[Check]) -> None:
        for c in checks:
            out.append(c)
            on_check(c)
            log.info("doctor.check", area=c.area, check=c.name, ok=c.ok)

    add(await database.checks(settings))
    async with aiohttp.ClientSession(raise_for_status=False) as http:
        for vendor in vendors:
            try:
                add(await checkers[vendor](settings, http))
            except Exception as exc:  # a check that crashed is a failed check, never a traceback
                add([failed(vendor, "checks", exc)])
    return out
