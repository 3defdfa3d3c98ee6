"""The daemon side of syncd: scheduler, leader lease, health/metrics server, signals, sd_notify.

* :mod:`syncd.service.daemon` — :func:`run_daemon` (``syncd run``)
* :mod:`syncd.service.lease`  — the leader lease (PostgreSQL row + fencing token; SQLite file lock)
* :mod:`syncd.service.health` — ``/healthz``, ``/readyz``, ``/metrics`` and ``syncd healthcheck``
* :mod:`syncd.service.notify` — systemd ``sd_notify`` (READY, STATUS, WATCHDOG, STOPPING)
"""
