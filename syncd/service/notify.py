"""systemd's ``sd_notify`` protocol, spoken directly: datagrams of ``KEY=value`` lines on ``$NOTIFY_SOCKET``.

``READY=1`` once the daemon serves, ``STATUS=…`` for ``systemctl status``, ``WATCHDOG=1`` every half of
``$WATCHDOG_USEC`` (when ``$WATCHDOG_PID`` is unset or names this process), ``STOPPING=1`` on shutdown.
An abstract socket is given as ``@name``.  Without ``$NOTIFY_SOCKET`` every call is a no-op, and a
failed send is logged, never raised: notification must not take the daemon down.
"""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger("syncd.service.notify")


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls) -> Notifier:
        address = os.environ.get("NOTIFY_SOCKET")
        usec: int | None = None
        raw, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
        if raw and raw.isdigit() and int(raw) > 0 and (not pid or pid == str(os.getpid())):
            usec = int(raw)
        return cls(address, usec)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half the watchdog timeout), or None if not asked for."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2_000_000

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines (keyword names upper-cased); True if a datagram went out."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, target)
        except OSError as exc:
            log.warning("notify.failed", socket=self.address, error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(ready="1", status=status, mainpid=str(os.getpid()))

    def status(self, status: str) -> bool:
        return self.notify(status=status)

    def watchdog(self) -> bool:
        return self.notify(watchdog="1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify(stopping="1", status=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
