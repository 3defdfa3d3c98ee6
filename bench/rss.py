"""Resident-set-size sampling in a background thread (``ru_maxrss`` only knows the overall peak)."""

from __future__ import annotations

import bisect
import resource
import sys
import threading
import time

import psutil

MB = 1024 * 1024


class RssSampler:
    """Samples ``psutil.Process().memory_info().rss`` every ``interval`` seconds, stamped with
    ``time.monotonic()``, so the peak of any past time window can be asked for afterwards."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.times: list[float] = []
        self.values: list[int] = []
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> int:
        rss = int(self._proc.memory_info().rss)
        # list.append is atomic under the GIL; readers take a consistent prefix by length
        self.values.append(rss)
        self.times.append(time.monotonic())
        return rss

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def peak(self, start: float, end: float) -> int:
        """Largest sample in ``[start, end]``, plus the first sample after ``end`` (a window shorter
        than the interval still gets one)."""
        n = min(len(self.times), len(self.values))
        times = self.times[:n]
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_right(times, end)
        window = self.values[lo : min(hi + 1, n)]
        return max(window) if window else (self.values[n - 1] if n else 0)


def ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
