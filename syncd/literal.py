"""Source values as operator output: literal (never rich markup) and visible (no raw control characters).

A name, id or reason that came from a vendor is data.  Printed through rich as a plain ``str`` it is
parsed as markup (``[/x]Kim`` raises MarkupError, ``[link=…]`` becomes a hyperlink, ``:smile:`` an
emoji); written to a terminal raw, an ESC or newline in it can clear the screen or forge a line.
:func:`visible` spells every control or invisible formatting character as a Python-style escape
(``\\x1b``, ``\\n``, ``\\u202e``); :func:`literal` wraps the result in a rich :class:`~rich.text.Text`,
which rich prints as it is.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text

#: C0 and C1 controls, DEL, and the invisible/bidirectional formatting characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(value: Any) -> str:
    """``value`` as text with every control character shown as an escape (``"\\x1b[2J"``)."""
    return _CONTROL.sub(_escape, str(value))


def literal(value: Any, style: str = "") -> Text:
    """``value`` as a rich Text: printed exactly (no markup, no emoji codes), control characters visible."""
    return Text(visible(value), style=style)
