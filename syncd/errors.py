"""One hierarchy of syncd errors.

Every error builds its own message in ``__init__`` and carries the vendor code where there is one
(``TOK004``, ``E902``, ``InvalidSessionException``).  Messages never contain a secret: callers pass
codes and public identifiers, never tokens, passwords or request bodies with personal data.
"""

from __future__ import annotations

from typing import Any


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""

    #: process exit code the CLI uses when this error ends a command
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(SyncdError):
    """The configuration is unusable.  ``problems`` is a list of (file, key, reason)."""

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str, str]] | str) -> None:
        if isinstance(problems, str):
            problems = [("", "", problems)]
        self.problems = problems
        lines = []
        for file, key, reason in problems:
            where = ": ".join(part for part in (file, key) if part)
            lines.append(f"{where}: {reason}" if where else reason)
        super().__init__("invalid configuration: " + "; ".join(lines))


class UsageError(SyncdError):
    """The command line asked for something that cannot be done."""

    exit_code = 2


class DatabaseError(SyncdError):
    """The staging database is unreachable or in an unexpected state."""


# --------------------------------------------------------------------------------------- vendors


class VendorError(SyncdError):
    """A vendor call failed.  ``vendor`` is ``infinityhr`` | ``whosoff`` | ``workbox``."""

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        method: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.code = code
        self.status = status
        self.method = method
        parts = [vendor]
        if method:
            parts.append(method)
        if status is not None:
            parts.append(f"HTTP {status}")
        if code and code != str(status):  # the gateway's bare 401 is not said twice
            parts.append(code)
        super().__init__(f"{' '.join(parts)}: {message}")


class TransientError(VendorError):
    """Worth retrying: 5xx, E1001, timeouts, resets, 429.  ``retry_after`` in seconds if the vendor said."""

    def __init__(self, vendor: str, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(vendor, message, **kw)


class UnreachableError(TransientError):
    """The vendor's host could not be reached (refused, no route, name not resolved).

    Usually a wrong ``url`` or a firewall rather than a passing fault: retried once, not for the whole
    back-off budget, so the operator hears about it in seconds.
    """


class AuthError(VendorError):
    """Authentication failed (bad credentials, expired token/session that could not be renewed)."""


class TokenExpiredError(AuthError):
    """The token or session is no longer valid; re-authenticate and retry once."""


class RejectedError(VendorError):
    """The vendor refused this request (E902, E904, ArgumentException).  Never retried."""


class AlreadyExistsError(RejectedError):
    """WORKBOX E904 on POST: the externalKey exists (an earlier attempt landed)."""


class NotFoundError(RejectedError):
    """WORKBOX E904 on PUT/DELETE: the externalKey is unknown (a DELETE already happened)."""


class EmailTakenError(RejectedError):
    """WORKBOX E902 on a member: its ``emailAddr`` is held by another member.  syncd's ledger has no
    such member, so it is one WORKBOX holds *unmapped* (created by hand): map it, do not retry."""


class VendorConfigError(VendorError):
    """The vendor says our set-up is wrong (E901, E903, gateway 401, unknown vendor id).  Stop pushing."""

    exit_code = 2


class QuotaExceededError(VendorError):
    """A longer-term quota of the vendor is spent (the API Gateway's 429 ``400``): stop pushing for this
    cycle and leave the rest pending; retrying in a loop only spends what is left of it."""


class ProtocolError(VendorError):
    """The vendor answered something that is not the contract: malformed or hostile XML/JSON, bad gzip."""


class InconsistentReadError(ProtocolError):
    """A paged read whose pages disagree (records read vs. TotalCount, an id on two pages, TotalCount
    changing between pages), even when read a second time: the source is stale, nothing is deleted."""


# ------------------------------------------------------------------------------------------ sync


class Interrupted(SyncdError):
    """Ctrl-C (SIGINT) or SIGTERM stopped a command; the message says what is left and how to finish."""

    exit_code = 130


class LeaseHeldError(SyncdError):
    """Another process holds the leader lease (``holder`` = host:pid when known)."""

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        self.holder = holder
        super().__init__(message)
