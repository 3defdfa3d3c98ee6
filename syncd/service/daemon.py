"""The daemon: scheduled sync cycles, credential keep-alive, the leader lease, health/metrics, signals.

Start-up and shutdown are one :class:`contextlib.AsyncExitStack`: signal handlers, the
:class:`~syncd.engine.context.SyncContext` (database engine, HTTP session, vendor clients), the leader
lease, the health server, the scheduler and the watchdog, closed in reverse order.

Jobs (APScheduler 3, :class:`AsyncIOScheduler`):

* ``sync`` on ``sync.schedule`` — an interval (first run at start-up) or a five-field cron
  expression; one instance at a time, missed runs coalesced, a misfire grace of one interval.  A
  process that does not hold the lease skips the cycle (standby).
* ``keepalive`` — renews the WhosOff token and the InfinityHR session when they are due, so they never
  expire between cycles.  It runs every ``KEEPALIVE_SECONDS`` as a safety net and is re-armed to fire
  at the earliest ``renew_at`` after every run of itself and of ``sync`` (so a 3-second token is
  renewed on time, and an idle daemon with a 20-minute session sends nothing in between).
* ``lease`` every quarter of ``sync.lease_period`` — the leader checks and heartbeats its lease, a
  standby tries to take over (and syncs at once when it does).  Each tick also reads the held and
  queued plans into their gauges; the leader starts a cycle at once for an approval another process
  queued (``syncd approve`` while this daemon leads), so it is applied within seconds, not at the
  next scheduled cycle.

SIGTERM/SIGINT: stop scheduling, let a running cycle finish for up to ``server.shutdown_timeout``
(then cancel it: the journal keeps every operation it had sent or meant to send, and the next run
re-drives them), release the lease, close everything, exit 0.  A second signal cancels at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import time
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncd import metrics
from syncd.config import Settings, parse_interval
from syncd.engine.approval import refresh_held_gauge
from syncd.engine.context import SyncContext
from syncd.engine.cycle import run_cycle
from syncd.errors import ConfigError, SyncdError
from syncd.service.health import HealthServer, last_success
from syncd.service.lease import LeaderLease, make_lease
from syncd.service.notify import Notifier

log = structlog.get_logger("syncd.service")

KEEPALIVE_SECONDS = 5.0


def sync_trigger(schedule: str) -> tuple[IntervalTrigger | CronTrigger, float, bool]:
    """(trigger, misfire grace in seconds, run at start-up?) for ``sync.schedule``."""
    interval = parse_interval(schedule)
    if interval is not None:
        return IntervalTrigger(seconds=interval), max(1.0, interval), True
    try:
        trigger = CronTrigger.from_crontab(schedule)
    except ValueError as exc:
        raise ConfigError([("", "sync.schedule", f"not a valid cron expression: {exc}")]) from None
    return trigger, 300.0, False


class Daemon:
    def __init__(self, settings: Settings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier.from_env()
        self.cycles = 0
        self.last_result: str | None = None
        self._stop = asyncio.Event()
        self._signals = 0
        self._cycle: asyncio.Task[Any] | None = None
        self._ctx: SyncContext | None = None
        self._lease: LeaderLease | None = None
        self._scheduler: AsyncIOScheduler | None = None
        #: an approval was queued by another process: the next cycle is started for it
        self._approval_due = False

    # ----------------------------------------------------------------------------------- life

    async def run(self) -> int:
        s = self.settings
        trigger, grace, at_start = sync_trigger(s.sync.schedule)
        async with contextlib.AsyncExitStack() as stack:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
                stack.callback(loop.remove_signal_handler, sig)
            stack.callback(self.notifier.close)
            self.notifier.status("starting: opening the database")

            ctx = self._ctx = await stack.enter_async_context(SyncContext.open(s))
            lease = self._lease = make_lease(s.database.url, ctx.engine, s.sync.lease_period)
            stack.push_async_callback(lease.release)
            with contextlib.suppress(Exception):
                last = await last_success(ctx.engine)
                if last is not None:
                    metrics.LAST_SUCCESS.set(last.timestamp())
                await refresh_held_gauge(ctx.sessions, s.sync.seconds("plan_ttl"))

            health = HealthServer(s, ctx.engine, self._status)
            await health.start()
            stack.push_async_callback(health.stop)

            await lease.try_acquire()
            scheduler = self._scheduler = AsyncIOScheduler(event_loop=loop)
            # an interval runs at start-up too; a cron schedule keeps to its own fire times
            first: dict[str, Any] = {"next_run_time": dt.datetime.now(dt.UTC)} if at_start else {}
            scheduler.add_job(
                self._sync_job, trigger, id="sync", name="sync", max_instances=1, coalesce=True,
                misfire_grace_time=int(grace), **first,
            )  # fmt: skip
            scheduler.add_job(
                self._keepalive_job, IntervalTrigger(seconds=KEEPALIVE_SECONDS), id="keepalive",
                name="keepalive", max_instances=1, coalesce=True, misfire_grace_time=None,
            )  # fmt: skip
            scheduler.add_job(
                self._lease_job, IntervalTrigger(seconds=s.sync.lease_period / 4), id="lease",
                name="lease", max_instances=1, coalesce=True, misfire_grace_time=int(s.sync.lease_period),
            )  # fmt: skip
            scheduler.start()
            stack.callback(scheduler.shutdown, wait=False)

            interval = self.notifier.watchdog_interval
            if interval is not None:
                watchdog = asyncio.create_task(self._watchdog(interval), name="watchdog")
                stack.push_async_callback(_cancel, watchdog)

            role = "leader" if lease.held else "standby"
            self.notifier.ready(f"{role}; schedule {s.sync.schedule}; health on {s.server.listen}")
            log.info(
                "service.ready", role=role, schedule=s.sync.schedule, listen=s.server.listen,
                holder=lease.holder, lease=type(lease).__name__,
            )  # fmt: skip

            await self._stop.wait()
            self.notifier.stopping("stopping: letting the running cycle finish")
            log.info("service.stopping")
            scheduler.pause()
            await self._drain()
        log.info("service.stopped", cycles=self.cycles)
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        log.info("service.signal", signal=sig.name)
        self._stop.set()
        if self._signals > 1 and self._cycle is not None:
            self._cycle.cancel()

    async def _drain(self) -> None:
        task = self._cycle
        if task is None or task.done():
            return
        timeout = self.settings.server.shutdown_timeout
        log.info("service.draining", timeout_s=timeout)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("service.drain_timeout", timeout_s=timeout)
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _status(self) -> dict[str, Any]:
        lease = self._lease
        return {
            "role": "leader" if lease is not None and lease.held else "standby",
            "holder": lease.holder if lease is not None else None,
            "syncing": self._cycle is not None,
            "cycles": self.cycles,
            "last_result": self.last_result,
        }

    # ----------------------------------------------------------------------------------- jobs

    async def _sync_job(self) -> None:
        ctx, lease = self._ctx, self._lease
        assert ctx is not None and lease is not None
        if self._stop.is_set():
            return
        if not lease.held and not await lease.try_acquire():
            holder = await lease.current_holder()
            log.info("sync.standby", leader=holder)
            self.notifier.status(f"standby: the leader lease is held by {holder or 'another process'}")
            return
        self._cycle = asyncio.current_task()
        ctx.fencing_token = lease.token
        self.notifier.status("syncing")
        trigger, self._approval_due = ("approve" if self._approval_due else "schedule"), False
        try:
            report = await run_cycle(ctx, trigger=trigger)
        except asyncio.CancelledError:
            # the shutdown cancelled it (a second signal, or the drain timeout): the run is recorded
            # interrupted and its journal re-driven next time; end the job quietly (the scheduler
            # would print CancelledError's traceback)
            log.warning("sync.cancelled", reason="shutdown")
            self.last_result = "interrupted"
            return
        except Exception as exc:  # the database, mostly: keep the daemon up, try again next time
            log.error("sync.error", error=f"{type(exc).__name__}: {exc}")
            self.last_result = "error"
            self.notifier.status(f"last cycle could not run: {type(exc).__name__}")
            return
        finally:
            self._cycle = None
            self.cycles += 1
            self._rearm_keepalive()
        self.last_result = report.result
        self.notifier.status(report.message()[:400])

    async def _keepalive_job(self) -> None:
        ctx = self._ctx
        assert ctx is not None
        failed = False
        for vendor, manager in (("whosoff", ctx.whosoff.tokens), ("infinityhr", ctx.infinityhr.sessions)):
            try:
                renewed = await manager.keep_alive()
            except SyncdError as exc:
                log.warning("keepalive.failed", vendor=vendor, error=str(exc))
                failed = True
                continue
            if renewed:
                log.info("keepalive.renewed", vendor=vendor, idle=self._cycle is None)
        if not failed:  # after a failure the regular KEEPALIVE_SECONDS tick retries, not a tight loop
            self._rearm_keepalive()

    def _rearm_keepalive(self) -> None:
        """Move the keep-alive job's next run to the earliest credential renewal time."""
        ctx, scheduler = self._ctx, self._scheduler
        if ctx is None or scheduler is None or self._stop.is_set():
            return
        due = [t for t in (ctx.whosoff.tokens.renew_at, ctx.infinityhr.sessions.renew_at) if t is not None]
        job = scheduler.get_job("keepalive")
        if not due or job is None:
            return
        when = max(min(due) + 0.01, time.time() + 0.05)
        if job.next_run_time is None or when < job.next_run_time.timestamp():
            job.modify(next_run_time=dt.datetime.fromtimestamp(when, dt.UTC))

    async def _lease_job(self) -> None:
        lease, scheduler = self._lease, self._scheduler
        assert lease is not None and scheduler is not None
        if lease.held:
            await lease.renew()
            await self._take_queued_approvals(scheduler)
            return
        await self._refresh_plan_gauges()
        if self._stop.is_set() or not await lease.try_acquire():
            return
        log.info("service.leader", holder=lease.holder)
        job = scheduler.get_job("sync")
        if job is not None:  # take over at once: the old leader may have left operations unsettled
            job.modify(next_run_time=dt.datetime.now(dt.UTC))

    async def _refresh_plan_gauges(self) -> int:
        ctx = self._ctx
        assert ctx is not None
        try:
            return await refresh_held_gauge(ctx.sessions, self.settings.sync.seconds("plan_ttl"))
        except Exception as exc:  # the database: the sync job reports it; the gauges wait
            log.debug("plans.gauge_failed", error=f"{type(exc).__name__}: {exc}")
            return 0

    async def _take_queued_approvals(self, scheduler: AsyncIOScheduler) -> None:
        """Start a cycle now for an approval queued by another process (the cycle takes it)."""
        if not await self._refresh_plan_gauges() or self._cycle is not None or self._stop.is_set():
            return
        job = scheduler.get_job("sync")
        if job is not None and not self._approval_due:
            self._approval_due = True
            log.info("service.approval_queued", action="starting a cycle to apply it")
            job.modify(next_run_time=dt.datetime.now(dt.UTC))


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_daemon(settings: Settings) -> int:
    return await Daemon(settings).run()
