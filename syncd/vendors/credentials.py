"""Token and session life cycle shared by everything that calls a vendor.

* :class:`WhosOffTokenManager` holds the WhosOff bearer token.  It renews it with
  ``with-access-token`` at ``token_renew_fraction`` of its lifetime minus ``clock_skew_margin``, and
  falls back to ``with-credentials`` when the vendor answers ``TOK004``.
* :class:`InfinityHRSessionManager` holds the InfinityHR session id.  The session dies after an idle
  timeout, so the manager tracks the last successful call and re-authenticates before
  ``session_idle_timeout - session_renew_margin`` of idleness.

Both share one in-flight renewal between concurrent callers (an :class:`asyncio.Lock` and a re-check
under it): N callers at expiry cause exactly one authenticate request.  A caller whose request was
refused calls ``renew("reactive", stale=the_value_it_used)``; if someone already renewed meanwhile, it
just gets the new value.

Times: ``expires_at`` and ``renew_at`` are **unix wall-clock seconds** (for the daemon's timer, logs and
the ``syncd_credential_expiry_timestamp_seconds`` gauge), computed from monotonic deadlines so that a
wall-clock jump does not move them.  Both clocks are injectable (``clock`` monotonic, ``wall`` unix
time) so that tests drive expiry without sleeping.  The values never leave a manager except through
:meth:`get` (as :class:`~pydantic.SecretStr`, to go into a request header or body) and are never logged.

The managers do not speak HTTP: each is given an *issuer* by its vendor module
(:class:`syncd.vendors.whosoff.WhosOffAuth`, :class:`syncd.vendors.infinityhr.InfinityHRAuth`).
:func:`with_renewal` is the one "renew once on a refused credential and retry" loop the clients share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog
from pydantic import SecretStr

from syncd.config import InfinityHRSettings, WhosOffSettings
from syncd.errors import TokenExpiredError
from syncd.logging import register_secret
from syncd.metrics import CREDENTIAL_EXPIRY, CREDENTIAL_RENEWALS

log = structlog.get_logger("syncd.credentials")

T = TypeVar("T")
Clock = Callable[[], float]


@dataclass(frozen=True)
class Grant:
    """A token or session as issued: its value and how many seconds it lives from now."""

    value: SecretStr
    lifetime: float


class TokenIssuer(Protocol):
    """What :class:`WhosOffTokenManager` needs from the WhosOff wire module."""

    async def with_credentials(self) -> Grant: ...

    async def with_access_token(self, token: SecretStr) -> Grant:
        """Renew ``token``; raise :class:`TokenExpiredError` when the vendor refuses it (TOK004)."""
        ...


class SessionIssuer(Protocol):
    """What :class:`InfinityHRSessionManager` needs from the InfinityHR wire module."""

    async def authenticate(self) -> Grant: ...


class _Managed:
    """Value + monotonic deadlines + one shared renewal."""

    vendor = ""

    def __init__(self, clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        #: the monotonic clock deadlines are kept on (and :meth:`touch` times are given in)
        self.clock = clock
        self._wall_clock = wall
        self._value: SecretStr | None = None
        self._expires_mono = 0.0
        self._renew_mono = 0.0
        self._lock = asyncio.Lock()
        self.renewals = 0

    # -------------------------------------------------------------------------------- exposure

    @property
    def expires_at(self) -> float | None:
        """Unix time the current value expires (``None`` before the first authentication)."""
        return None if self._value is None else self._wall(self._expires_mono)

    @property
    def renew_at(self) -> float | None:
        """Unix time the manager will renew the value (``None`` before the first authentication)."""
        return None if self._value is None else self._wall(self._renew_mono)

    @property
    def valid(self) -> bool:
        return self._value is not None and self.clock() < self._expires_mono

    def _due(self) -> bool:
        return self._value is None or self.clock() >= self._renew_mono

    # ----------------------------------------------------------------------------------- access

    async def get(self) -> SecretStr:
        """The current value, renewed first if it is due (one renewal shared by concurrent callers)."""
        value = self._value
        if value is not None and not self._due():
            return value
        async with self._lock:
            if self._due():
                await self._renew_locked("proactive" if self._value is not None else "initial")
            assert self._value is not None
            return self._value

    async def renew(self, reason: str = "reactive", *, stale: SecretStr | None = None) -> SecretStr:
        """Renew now.  With ``stale`` (the value a refused request used), renew only if it is current."""
        async with self._lock:
            if stale is not None and self._value is not None and self._value is not stale:
                return self._value
            await self._renew_locked(reason)
            assert self._value is not None
            return self._value

    async def keep_alive(self) -> bool:
        """Renew if due (the daemon calls this on a timer while idle).  True if it renewed."""
        if self._value is None or not self._due():
            return False
        async with self._lock:
            if self._value is None or not self._due():
                return False
            await self._renew_locked("proactive")
            return True

    async def invalidate(self) -> None:
        """Forget that the current value is usable: the next :meth:`get` renews it."""
        async with self._lock:
            self._expires_mono = self._renew_mono = 0.0

    async def _renew_locked(self, reason: str) -> None:
        raise NotImplementedError

    def _wall(self, mono: float) -> float:
        return self._wall_clock() + (mono - self.clock())

    def _install(self, grant: Grant, how: str, renew_after: float) -> None:
        now = self.clock()
        lifetime = max(0.0, grant.lifetime)
        self._value = grant.value
        register_secret(grant.value.get_secret_value())
        self._expires_mono = now + lifetime
        self._renew_mono = now + max(0.0, min(renew_after, lifetime))
        self.renewals += 1
        CREDENTIAL_RENEWALS.labels(self.vendor, how).inc()
        CREDENTIAL_EXPIRY.labels(self.vendor).set(self._wall(self._expires_mono))
        log.info(
            "credential.renewed",
            vendor=self.vendor,
            how=how,
            lifetime_s=round(lifetime, 3),
            renew_in_s=round(self._renew_mono - now, 3),
        )


def _renew_point(lifetime: float, fraction: float, margin: float) -> float:
    """``fraction * lifetime - margin``, but never earlier than half of ``fraction * lifetime``.

    The margin exists for clock differences on long-lived credentials; with a very short lifetime (a
    test, a misconfigured vendor) it must not turn every call into a renewal.
    """
    target = fraction * lifetime
    return max(target - margin, target / 2)


class WhosOffTokenManager(_Managed):
    """The WhosOff bearer token: renewed with ``with-access-token``, ``with-credentials`` on TOK004."""

    vendor = "whosoff"

    def __init__(
        self, settings: WhosOffSettings, issuer: TokenIssuer, *, clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:  # fmt: skip
        super().__init__(clock, wall)
        self._settings = settings
        self._issuer = issuer

    async def _renew_locked(self, reason: str) -> None:
        how = reason
        revoked = reason == "reactive" and self.valid
        if self._value is None or revoked:
            # A token refused before its own expiry was revoked: with-access-token would refuse it too.
            grant = await self._issuer.with_credentials()
            how = "credentials"
        else:
            try:
                grant = await self._issuer.with_access_token(self._value)
            except TokenExpiredError:
                log.info("credential.refresh_refused", vendor=self.vendor, reason=reason)
                grant = await self._issuer.with_credentials()
                how = "credentials"
        s = self._settings
        self._install(grant, how, _renew_point(grant.lifetime, s.token_renew_fraction, s.clock_skew_margin))


class InfinityHRSessionManager(_Managed):
    """The InfinityHR session id, re-authenticated before it has been idle for too long.

    The client calls :meth:`touch` after every successful call made with the session (passing the time,
    on :attr:`clock`, the request was *sent*: the conservative end of the idle timer).  The idle timeout
    is the smaller of ``session_idle_timeout`` and what Authenticate reported (``SessionEnd -
    SessionStart``, via :attr:`Grant.lifetime`).
    """

    vendor = "infinityhr"

    def __init__(
        self, settings: InfinityHRSettings, issuer: SessionIssuer, *, clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:  # fmt: skip
        super().__init__(clock, wall)
        self._settings = settings
        self._issuer = issuer
        self._idle_timeout = settings.session_idle_timeout

    @property
    def idle_timeout(self) -> float:
        return self._idle_timeout

    async def _renew_locked(self, reason: str) -> None:
        grant = await self._issuer.authenticate()
        idle = self._settings.session_idle_timeout
        if grant.lifetime > 0:
            idle = min(idle, grant.lifetime)
        self._idle_timeout = idle
        how = "credentials" if reason == "initial" else reason
        self._install(
            Grant(grant.value, idle), how, _renew_point(idle, 1.0, self._settings.session_renew_margin)
        )

    def touch(self, session: SecretStr, sent_at: float) -> None:
        """Record a successful call made with ``session`` that was sent at ``sent_at`` (on :attr:`clock`)."""
        if session is not self._value:
            return
        expires = sent_at + self._idle_timeout
        if expires <= self._expires_mono:
            return
        self._expires_mono = expires
        self._renew_mono = sent_at + _renew_point(
            self._idle_timeout, 1.0, self._settings.session_renew_margin
        )
        CREDENTIAL_EXPIRY.labels(self.vendor).set(self._wall(self._expires_mono))


async def with_renewal(
    credential: _Managed,
    call: Callable[[SecretStr], Awaitable[T]],
    *,
    on_refused: Callable[[], None] | None = None,
) -> T:
    """``await call(value)`` with the current value; if the vendor refuses it (:class:`TokenExpiredError`),
    renew once and call once more.

    The renewal names the refused value (``stale``), so callers refused together share one renewal.  A
    second refusal is raised.  ``on_refused`` runs before the renewal (a client's own log line).
    """
    for renewed in (False, True):
        value = await credential.get()
        try:
            return await call(value)
        except TokenExpiredError:
            if renewed:
                raise
            if on_refused is not None:
                on_refused()
            await credential.renew("reactive", stale=value)
    raise AssertionError("unreachable")  # pragma: no cover
