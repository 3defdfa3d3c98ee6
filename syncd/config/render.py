"""The configuration as TOML text: what ``check-config`` prints and ``syncd doctor``'s fixes are."""

from __future__ import annotations

import json
from typing import Any


def render_toml(data: dict[str, dict[str, Any]]) -> str:
    """Render the configuration as TOML: sections, their sub-tables (``[infinityhr.fields]``), scalars
    and arrays (enough for the effective configuration, and it loads back the same)."""
    lines: list[str] = []

    def table(name: str, values: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if key not in nested:
                lines.append(_line(key, value))
        lines.append("")
        for key, value in nested.items():
            table(f"{name}.{key}", value)

    for section, values in data.items():
        table(section, values)
    return "\n".join(lines).rstrip() + "\n"


def _line(key: str, value: Any) -> str:
    if value is None:
        return f"# {key} is not set"
    if isinstance(value, bool):
        return f"{key} = {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"{key} = {value}"
    if isinstance(value, (list, tuple)):  # a TOML array (JSON's string escapes are TOML's)
        return f"{key} = [{', '.join(json.dumps(str(v), ensure_ascii=False) for v in value)}]"
    return f"{key} = {json.dumps(str(value), ensure_ascii=False)}"
