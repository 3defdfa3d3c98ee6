"""Progress of long steps (pull pages, applied operations), for a display on a terminal.

The engine reports through this protocol and never depends on how it is shown; log lines carry the
same figures for non-terminal runs.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def update(self, task: str, *, done: int, total: int | None = None) -> None:
        """``done`` units of ``task`` are complete (of ``total``, when known)."""

    def close(self, task: str) -> None:
        """``task`` is over."""


class NullProgress:
    def update(self, task: str, *, done: int, total: int | None = None) -> None:
        return None

    def close(self, task: str) -> None:
        return None


NULL_PROGRESS: Progress = NullProgress()
