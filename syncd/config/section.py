"""What every configuration section is: unknown keys refused, secrets inline, from a file or from
systemd credentials (in that order), template placeholders refused; and the interval syntax."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

#: inline secret values that are a template's placeholder, not a secret (case-insensitive)
_PLACEHOLDER = re.compile(
    r"^(change[-_ ]?me|replace[-_ ]?me|your[-_].*|<.*>|x{3,}|todo|fixme|tbd|\.\.\.|…)$", re.I
)


def looks_like_placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.match(value.strip()))


_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_interval(text: str) -> float | None:
    """``"30s"`` / ``"15m"`` / ``"2h"`` / ``"1d"`` → seconds, or ``None`` if ``text`` is not an interval."""
    m = _INTERVAL.match(text)
    if not m:
        return None
    return float(m.group(1)) * _UNITS[m.group(2)]


class Section(BaseModel):
    """A config section: unknown keys are errors; secrets may come from files."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    #: keys that may also be given as ``<key>_file`` or in ``$CREDENTIALS_DIRECTORY``
    file_keys: ClassVar[tuple[str, ...]] = ()
    section_name: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        for key in cls.file_keys:
            inline = data.get(key)
            if isinstance(inline, str) and looks_like_placeholder(inline):
                raise ValueError(
                    f"{key} looks like a template's placeholder (change-me, your-…, <…>), not a secret: "
                    f'remove it and give the secret as {key}_file = "/path" or in '
                    f"$CREDENTIALS_DIRECTORY/{cls.section_name}_{key} (an inline value wins over both)"
                )
            file_key = f"{key}_file"
            path = data.pop(file_key, None)
            if path is not None:
                if data.get(key) not in (None, ""):
                    raise ValueError(f"give either {key} or {file_key}, not both")
                data[key] = _read_secret_file(Path(str(path)), file_key)
            elif data.get(key) in (None, "") and creds:
                cred = Path(creds) / f"{cls.section_name}_{key}"
                if cred.is_file():
                    data[key] = _read_secret_file(cred, key, check_mode=False)
        return data


def _read_secret_file(path: Path, key: str, *, check_mode: bool = True) -> str:
    try:
        st = path.stat()
        if check_mode and st.st_mode & stat.S_IROTH:
            raise ValueError(
                f"{key} {path} is readable by every user (mode {stat.S_IMODE(st.st_mode):o}); "
                f"run: chmod 600 {path}"
            )
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read {key} {path}: {exc.strerror}") from None
