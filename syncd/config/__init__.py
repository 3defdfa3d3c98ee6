"""Configuration: a TOML file, overridden by ``SYNCD_<SECTION>__<KEY>`` environment variables.

``load_settings(path)`` returns a validated :class:`Settings` or raises :class:`ConfigError` listing
every problem as (file, key, reason).  There is no module-level settings object.

Secrets are :class:`pydantic.SecretStr`.  Each may be given inline, as ``<key>_file = "/path"``
(the file's content, trailing newline stripped), or as ``$CREDENTIALS_DIRECTORY/<section>_<key>``
(systemd ``LoadCredential=``), in that order of precedence.

Modules: :mod:`.section` (what every section is), :mod:`.vendors`, :mod:`.settings` (the whole),
:mod:`.loading` (file + environment → :class:`Settings`), :mod:`.checks` (check-config's warnings).
"""

from __future__ import annotations

from syncd.config.loading import (
    CONFIG_ENV,
    config_path,
    load_settings,
    read_toml,
    resolve_database_url,
    state_dir,
)
from syncd.config.section import Section, looks_like_placeholder, parse_interval
from syncd.config.settings import (
    DEFAULT_DATABASE_URL,
    ENV_PREFIX,
    MASK,
    DatabaseSettings,
    LogSettings,
    ServerSettings,
    Settings,
    SyncSettings,
    url_password,
)
from syncd.config.vendors import (
    DEFAULT_WORKBOX_URL,
    InfinityHRSettings,
    VendorSettings,
    WhosOffSettings,
    WorkboxSettings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_WORKBOX_URL",
    "ENV_PREFIX",
    "MASK",
    "DatabaseSettings",
    "InfinityHRSettings",
    "LogSettings",
    "Section",
    "ServerSettings",
    "Settings",
    "SyncSettings",
    "VendorSettings",
    "WhosOffSettings",
    "WorkboxSettings",
    "config_path",
    "load_settings",
    "looks_like_placeholder",
    "parse_interval",
    "read_toml",
    "resolve_database_url",
    "state_dir",
    "url_password",
]
