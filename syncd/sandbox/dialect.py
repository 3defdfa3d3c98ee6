"""Another vendor dialect for the sandbox (``syncd sandbox --dialect FILE``): what a real deployment
may do differently from the contract's defaults (docs/vendor-contract.md §4), so that adapting syncd
by configuration alone can be tested.

The file is TOML; every key is optional (the contract's default):

    [whosoff]
    email_field = "email_address"      # the key a user's e-mail is served under (default email_contact)

    [workbox]
    signature = "v2"                   # the only signature variant the gateway accepts (default v1)
    connections_off = ["job-position"] # kinds whose organisation connection is OFF: answered E903

Plain data: the sandbox knows nothing of syncd's settings classes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKBOX_KINDS = ("dept", "user", "job-grade", "job-position")
EMAIL_FIELDS = ("email_contact", "email_address")


class DialectError(ValueError):
    """A dialect file that cannot be used (names the file and the key)."""


@dataclass(frozen=True)
class WhosOffDialect:
    email_field: str = "email_contact"


@dataclass(frozen=True)
class WorkboxDialect:
    signature: str = "v1"
    connections_off: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dialect:
    whosoff: WhosOffDialect = field(default_factory=WhosOffDialect)
    workbox: WorkboxDialect = field(default_factory=WorkboxDialect)


def _section(data: dict[str, Any], name: str, known: tuple[str, ...], where: str) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise DialectError(f"{where}: [{name}] must be a table")
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise DialectError(
            f"{where}: [{name}] has unknown keys {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return section


def parse_dialect(data: dict[str, Any], where: str = "dialect") -> Dialect:
    unknown = sorted(set(data) - {"whosoff", "workbox"})
    if unknown:
        raise DialectError(f"{where}: unknown sections {', '.join(unknown)} (known: whosoff, workbox)")
    wo = _section(data, "whosoff", ("email_field",), where)
    wb = _section(data, "workbox", ("signature", "connections_off"), where)
    email_field = wo.get("email_field", "email_contact")
    if email_field not in EMAIL_FIELDS:
        raise DialectError(f"{where}: whosoff.email_field must be one of {', '.join(EMAIL_FIELDS)}")
    signature = wb.get("signature", "v1")
    if signature not in ("v1", "v2"):
        raise DialectError(f"{where}: workbox.signature must be v1 or v2")
    off = wb.get("connections_off", [])
    if not isinstance(off, list) or any(k not in WORKBOX_KINDS for k in off):
        raise DialectError(f"{where}: workbox.connections_off must list kinds of {', '.join(WORKBOX_KINDS)}")
    return Dialect(WhosOffDialect(email_field), WorkboxDialect(signature, tuple(off)))


def load_dialect(path: Path) -> Dialect:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DialectError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DialectError(f"{path}: not valid TOML: {exc}") from None
    return parse_dialect(data, str(path))
