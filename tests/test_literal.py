"""syncd.literal: source values as plain, visible text."""

from __future__ import annotations

import io
import logging

import pytest
import structlog
from rich.console import Console

from syncd.literal import literal, visible
from syncd.logging import configure_logging


def test_visible_makes_control_characters_visible() -> None:
    assert visible("a\x1b[2J\nb\tc\x00\x7f\u202e") == "a\\x1b[2J\\nb\\tc\\x00\\x7f\\u202e"
    assert visible("[/x]Kim — Zoë") == "[/x]Kim — Zoë"


def test_literal_is_never_markup_or_emoji() -> None:
    out = Console(record=True, width=200, color_system=None)
    out.print(literal("[/x]Kim [bold]x[/] :smile:"))
    assert out.export_text().strip() == "[/x]Kim [bold]x[/] :smile:"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True], ids=["console-format", "terminal"])
def test_console_log_lines_show_source_values_literally(tty: bool) -> None:
    buf = _Terminal() if tty else io.StringIO()
    configure_logging("info", "console", stream=buf)
    structlog.get_logger("t").warning(
        "record.rejected", record_id="\x1b[2J\nFAKE line", name="[/x]Kim", title="\x1b[31mred\x1b[0m"
    )
    logging.getLogger("aiohttp.client").warning("stdlib %s", "\x1b]8;;https://evil.example\x07")
    out = buf.getvalue()
    assert "\x1b[2J" not in out and "\x1b[31mred" not in out and "\x1b]8" not in out and "\x07" not in out
    assert (
        "'\\x1b[2J\\nFAKE line'" in out
        and "\\x1b[31mred\\x1b[0m" in out
        and "[/x]Kim" in out
        and "\\x1b]8;;https://evil.example\\x07" in out
    )
    assert "\nFAKE line" not in out
