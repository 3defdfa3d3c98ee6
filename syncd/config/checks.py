"""What is valid in a configuration but unsafe: ``syncd check-config`` prints these as warnings.

Plain ``http://`` to a host that is not loopback, and inline secrets in a file every user can read.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from typing import Any
from urllib.parse import urlsplit

from syncd.config import Section, Settings, config_path, read_toml, url_password


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _inline_secrets(data: dict[str, Any]) -> list[str]:
    """``section.key`` of every secret given inline in a config file's ``data``."""
    found = []
    for name, field in Settings.model_fields.items():
        section, model = data.get(name), field.annotation
        if not isinstance(section, dict) or not (isinstance(model, type) and issubclass(model, Section)):
            continue
        for key in model.file_keys:
            value = section.get(key)
            if key == "url" and name == "database":
                if isinstance(value, str) and url_password(value):
                    found.append(f"{name}.{key}")
            elif value not in (None, ""):
                found.append(f"{name}.{key}")
    return found


def config_warnings(
    settings: Settings, path: str | os.PathLike[str] | None = None
) -> list[tuple[str, str, str]]:
    """What is valid but unsafe in the configuration, as (file, key, reason): plain ``http://`` to a
    host that is not loopback, and inline secrets in a file every user can read."""
    file = config_path(path)
    label = str(file) if file else "environment"
    warnings: list[tuple[str, str, str]] = []
    for name in ("infinityhr", "whosoff", "workbox"):
        url = urlsplit(getattr(settings, name).url)
        if url.scheme == "http" and not _loopback(url.hostname or ""):
            warnings.append((
                label, f"{name}.url",
                f"http:// to {url.hostname}: credentials and personal data would cross the network "
                "unencrypted; use https:// (plain http is for a loopback host only)",
            ))  # fmt: skip
    if file is not None:
        try:
            mode = file.stat().st_mode
        except OSError:
            return warnings
        inline = _inline_secrets(read_toml(file, label)) if mode & stat.S_IROTH else []
        if inline:
            warnings.append((
                label, "",
                f"is readable by every user (mode {stat.S_IMODE(mode):o}) and holds inline secrets "
                f"({', '.join(inline)}): run chmod 600 {file}, or give them as <key>_file or "
                "$CREDENTIALS_DIRECTORY files",
            ))  # fmt: skip
    return warnings


def secret_sources(path: str | os.PathLike[str] | None) -> list[str]:
    """For each secret, where its value comes from (never the value): ``section.key: SOURCE``, in
    the order of precedence that chose it (inline, ``<key>_file``, ``$CREDENTIALS_DIRECTORY``)."""
    file = config_path(path)
    data = read_toml(file, str(file)) if file is not None else {}
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    out = []
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, Section)):
            continue
        raw = data.get(name)
        section: dict[str, Any] = raw if isinstance(raw, dict) else {}
        for key in model.file_keys:
            env = f"SYNCD_{name.upper()}__{key.upper()}"
            env_file = f"{env}_FILE"
            cred = os.path.join(creds, f"{name}_{key}") if creds else None
            if env in os.environ:
                source = f"environment {env}"
            elif section.get(key) not in (None, ""):
                source = f"inline in {file}"
            elif env_file in os.environ:
                source = f"file {os.environ[env_file]} (environment {env_file})"
            elif section.get(f"{key}_file"):
                source = f"file {section[f'{key}_file']}"
            elif cred is not None and os.path.isfile(cred):
                source = f"credential {cred}"
            elif key == "url" and name == "database":
                continue  # not a secret unless it carries a password
            else:
                source = "not set"
            out.append(f"{name}.{key}: {source}")
    return out
