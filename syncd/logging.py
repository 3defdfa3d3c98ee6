"""structlog set-up: JSON off a terminal, console on one; every event passes through redaction.

Redaction removes (1) every value registered as secret — the configured secrets at start-up and, at
run time, every token, session id and signature the clients obtain or compute
(:func:`register_secret`) — wherever it appears in an event, keys and nested values included; and
(2) the value of any field whose *name* says it is sensitive (``token``, ``password``, ``ssn``, …).
Standard-library loggers (aiohttp, alembic, sqlalchemy) are routed through the same pipeline.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from syncd.literal import visible

REDACTED = "[redacted]"

_SENSITIVE_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|session_?id|signature|api_?key|secret_?key|authorization|"
    r"cookie|nonce|ssn|personal_?email|credential)",
    re.IGNORECASE,
)
#: field names that contain a sensitive word but are safe to show
_SAFE_KEYS = frozenset({"token_expires_at", "token_renew_at", "session_expires_at", "session_renew_at"})
#: shortest value treated as a secret (shorter ones would mangle ordinary words)
_MIN_SECRET_LEN = 6


class SecretRegistry:
    """Values that must never appear in output.  Thread-safe; keeps the most recent ``maxlen``."""

    def __init__(self, maxlen: int = 512) -> None:
        self._static: set[str] = set()
        self._dynamic: deque[str] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str | None, *, static: bool = False) -> None:
        if not value or len(value) < _MIN_SECRET_LEN:
            return
        with self._lock:
            if value in self._static or value in self._dynamic:
                return
            (self._static.add if static else self._dynamic.append)(value)
            self._pattern = None

    def clear(self) -> None:
        with self._lock:
            self._static.clear()
            self._dynamic.clear()
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None:
                values = sorted({*self._static, *self._dynamic}, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, values))) if values else None
            return self._pattern


SECRETS = SecretRegistry()


def register_secret(value: str | None) -> None:
    """Make sure ``value`` (a token, session id, signature, …) never reaches a log line."""
    SECRETS.add(value)


def _scrub(value: Any, pattern: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value) if pattern else value
    if isinstance(value, Mapping):
        return {_scrub(str(k), pattern): _field(str(k), v, pattern) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(v, pattern) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return _scrub(str(value), pattern)


def _field(key: str, value: Any, pattern: re.Pattern[str] | None) -> Any:
    if key not in _SAFE_KEYS and _SENSITIVE_KEY.search(key) and value not in (None, "", 0, False):
        return REDACTED
    return _scrub(value, pattern)


def redact(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``event`` with every secret value and sensitive field removed."""
    pattern = SECRETS.pattern()
    return {_scrub(str(k), pattern): _field(str(k), v, pattern) for k, v in event.items()}


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return redact(event_dict)


#: structlog's ConsoleRenderer prints a field value holding one of these with repr() (which escapes
#: every control character itself), any other str value as it is
_REPRED = frozenset(" \t=\r\n\"'")


def _visible_value(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the console renderer prints other values with repr(): escaped already
    if key == "exception":  # a traceback keeps its line breaks; anything else is made visible
        return "\n".join(visible(line) for line in value.split("\n"))
    if key not in ("event", "logger", "level", "timestamp") and not _REPRED.isdisjoint(value):
        return value  # repr()'d by the renderer: escaping it here too would double the backslashes
    return visible(value)


def visible_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """For console rendering: no raw control character of an event (a source value with an ESC or a
    newline) reaches the terminal; it is shown as ``\\x1b``, ``\\n``."""
    return {visible(str(k)): _visible_value(str(k), v) for k, v in event_dict.items()}


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]


class _ConsoleHandler(logging.Handler):
    """Writes through a rich Console, so log lines print above a live progress display."""

    def __init__(self, console: Any) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        from rich.text import Text

        try:
            self.console.print(Text.from_ansi(self.format(record)), soft_wrap=True, highlight=False)
        except Exception:  # logging must never raise
            self.handleError(record)


_CONSOLE: Any = None

#: syslog priority of each level: under systemd, ``<N>`` before a line files it at that priority
_SYSLOG = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def on_journal(stream: TextIO) -> bool:
    """Whether ``stream`` is connected to the journal: systemd sets ``$JOURNAL_STREAM`` to the
    ``device:inode`` of the stream it gives a service (a pipe to a terminal or a file is not it)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's StringIO)
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


class _JournalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prefixes each line with its syslog priority (``<4>`` for a warning), which journald reads:
    ``journalctl -p warning -u syncd`` then finds the warnings."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_SYSLOG.get(record.levelno, 6)}>{super().format(record)}"


def terminal_console() -> Any:
    """The rich Console on stderr that log lines use on a terminal (None when not on one)."""
    return _CONSOLE


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and stdlib logging once for the process."""
    for value in secrets:
        SECRETS.add(value, static=True)
    stream = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([visible_processor] if use_console else []),
            renderer,
        ],
    )
    global _CONSOLE
    handler: logging.Handler
    if use_console and stream.isatty():
        from rich.console import Console

        _CONSOLE = Console(file=stream)
        handler = _ConsoleHandler(_CONSOLE)
    else:
        _CONSOLE = None
        handler = _JournalHandler(stream) if on_journal(stream) else logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Libraries are chatty at INFO; keep their warnings.
    for name in ("aiohttp.access", "asyncio", "sqlalchemy.engine", "apscheduler", "alembic"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    # aiosqlite logs every statement with its bound parameters (names, e-mails, phones) at DEBUG:
    # never below INFO, --debug included.
    logging.getLogger("aiosqlite").setLevel(max(numeric, logging.INFO))
