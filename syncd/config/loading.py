"""Reading the configuration: the file (``--config`` or ``$SYNCD_CONFIG``), the environment over it,
every problem named with where it came from; the state directory relative SQLite paths resolve
against."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from syncd.config.settings import ENV_PREFIX, Settings
from syncd.config.vendors import VENDOR_SECRETS
from syncd.errors import ConfigError
from syncd.paths import CONFIG_ENV, config_path, state_dir

__all__ = ["CONFIG_ENV", "config_path", "load_settings", "read_toml", "resolve_database_url", "state_dir"]


def resolve_database_url(url: str, config_file: Path | None) -> str:
    """A SQLite URL with a relative path made absolute against :func:`state_dir`; others unchanged."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if Path(database).is_absolute():
        return url
    return parsed.set(database=str(state_dir(config_file) / database)).render_as_string(hide_password=False)


def read_toml(file: Path, label: str) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([(label, "", "file not found")]) from None
    except PermissionError:
        raise ConfigError([(label, "", "permission denied")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(label, "", f"not valid TOML: {exc}")]) from None


def load_settings(path: str | os.PathLike[str] | None = None, *, vendor_secrets: bool = True) -> Settings:
    """Read ``path`` (or ``$SYNCD_CONFIG``), apply the environment, validate; a relative SQLite path
    (and the default database) is resolved against :func:`state_dir`.  ``vendor_secrets=False`` (a
    command that only reads the staging database): a vendor secret given nowhere is left empty instead
    of refused, so such a command runs without the unit's credentials."""
    file = config_path(path)
    label = str(file) if file else "environment"
    data = read_toml(file, label) if file is not None else {}
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        missing = _missing_vendor_secrets(exc)
        if vendor_secrets or not missing or len(missing) < exc.error_count():
            raise ConfigError(_problems(exc, label)) from None
        for section, key in missing:
            data.setdefault(section, {})[key] = ""
        try:
            settings = Settings(**data)
        except ValidationError as again:
            raise ConfigError(_problems(again, label)) from None
    url = resolve_database_url(settings.database.url, file)
    if url == settings.database.url:
        return settings
    return settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})


def _missing_vendor_secrets(exc: ValidationError) -> list[tuple[str, str]]:
    """The vendor secrets ``exc`` says are missing, as (section, key)."""
    found = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err["loc"]
        if err["type"] == "missing" and len(loc) == 2 and str(loc[1]) in VENDOR_SECRETS.get(str(loc[0]), ()):
            found.append((str(loc[0]), str(loc[1])))
    return found


def _blame(loc: tuple[Any, ...], label: str) -> str:
    """Where a bad value came from: its environment variable when one is set, else the file."""
    if len(loc) >= 2:
        name = f"{ENV_PREFIX}{str(loc[0]).upper()}__{str(loc[1]).upper()}"
        if name in os.environ:
            return f"environment {name}"
    return label


def _problems(exc: ValidationError, label: str) -> list[tuple[str, str, str]]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            reason = "unknown key (check its spelling)"
        elif kind == "missing":
            reason = "required key is missing"
        else:
            reason = str(err["msg"]).removeprefix("Value error, ")
        problems.append((_blame(err["loc"], label), loc, reason))
    return problems
