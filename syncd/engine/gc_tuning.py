"""Fewer cyclic-GC passes while a cycle builds its data."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: cyclic-GC thresholds while a cycle runs (see :func:`relaxed_gc`)
CYCLE_GC_THRESHOLD = (100_000, 50, 50)


@contextlib.contextmanager
def relaxed_gc() -> Iterator[None]:
    """Raise the gen-0 threshold while a cycle runs; restore it afterwards.

    A cycle allocates hundreds of thousands of long-lived dicts and strings (staged payloads, desired
    bodies, the ledger) and almost no reference cycles; with the default gen-0 threshold of 700 the
    collector walks all of them again and again (bench/findings.md has the figures).  Reference
    counting still frees everything as it goes.
    """
    previous = gc.get_threshold()
    gc.set_threshold(*CYCLE_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
