"""Configuration: a TOML file, overridden by ``SYNCD_<SECTION>__<KEY>`` environment variables.

``load_settings(path)`` returns a validated :class:`Settings` or raises :class:`ConfigError` listing
every problem as (file, key, reason).  There is no module-level settings object.

Secrets are :class:`pydantic.SecretStr`.  Each may be given inline, as ``<key>_file = "/path"``
(the file's content, trailing newline stripped), or as ``$CREDENTIALS_DIRECTORY/<section>_<key>``
(systemd ``LoadCredential=``), in that order of precedence.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from syncd.errors import ConfigError

ENV_PREFIX = "SYNCD_"
CONFIG_ENV = "SYNCD_CONFIG"
MASK = "********"
DEFAULT_WORKBOX_URL = "https://workbox.apigw.ntruss.com/workbox/workbox/openapi/v1"


def state_dir(config_file: Path | None = None) -> Path:
    """Where the staging database lives and relative SQLite paths point: ``$STATE_DIRECTORY``
    (systemd; the first entry if several), else the configuration file's directory, else the current
    directory (no configuration file).  Never the working directory when a file is in use, so a
    command run from anywhere opens the same database."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0]).absolute()
    if config_file is not None:
        return config_file.absolute().parent
    return Path.cwd()


#: the default ``database.url``: ``syncd.db`` in the state directory (resolved by :func:`load_settings`)
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///syncd.db"


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


class DatabaseSettings(Section):
    section_name = "database"
    file_keys = ("url",)
    url: str = DEFAULT_DATABASE_URL
    auto_migrate: bool = True
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class VendorSettings(Section):
    """Transport settings every vendor section shares."""

    url: str
    #: seconds for one request (connect + read)
    timeout: float = Field(30.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)
    max_concurrency: int = Field(4, ge=1, le=256)
    requests_per_second: float = Field(20.0, gt=0)
    #: attempts for a transient failure, the first included
    retry_attempts: int = Field(5, ge=1, le=50)
    #: overall seconds a call may spend retrying
    retry_deadline: float = Field(120.0, gt=0)
    retry_backoff_initial: float = Field(0.5, ge=0)
    retry_backoff_max: float = Field(30.0, ge=0)
    #: largest response body accepted, bytes (after decompression)
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        authority = re.match(r"^https?://([^/?#]*)", v)
        if authority and authority.group(1).rpartition("@")[2].endswith(":"):
            raise ValueError("has ':' but no port after it")
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018  (raises ValueError for a port that is not 0-65535)
        except ValueError:
            raise ValueError("port must be a number from 0 to 65535") from None
        if not parts.hostname:
            raise ValueError("has no host name")
        return v.rstrip("/")


class InfinityHRSettings(VendorSettings):
    section_name = "infinityhr"
    file_keys = ("vendor_password",)
    vendor_id: str = Field(min_length=1)
    vendor_password: SecretStr
    company_id: str | None = None
    page_size: int = Field(500, ge=1, le=1000)
    #: pages requested ahead of the one being read (0: one request at a time): the service builds
    #: them while syncd parses the page before
    prefetch_pages: int = Field(1, ge=0, le=8)
    #: the service's idle timeout; the session is renewed ``session_renew_margin`` before it
    session_idle_timeout: float = Field(1200.0, gt=0)
    session_renew_margin: float = Field(120.0, ge=0)


class WhosOffSettings(VendorSettings):
    section_name = "whosoff"
    file_keys = ("client_secret", "password")
    app_id: str = Field(min_length=1)
    client_secret: SecretStr
    username: str = Field(min_length=1)
    password: SecretStr
    ip_address: str = Field(min_length=1)
    #: renew the token at this fraction of its lifetime
    token_renew_fraction: float = Field(0.8, gt=0, lt=1)
    #: seconds subtracted from the vendor's expiry for clock differences
    clock_skew_margin: float = Field(30.0, ge=0)

    @field_validator("url")
    @classmethod
    def _root_not_v4(cls, v: str) -> str:
        if v.rstrip("/").endswith("/v4"):
            raise ValueError("give the root URL, without /v4")
        return v


class WorkboxSettings(VendorSettings):
    section_name = "workbox"
    file_keys = ("api_key", "secret_key")
    url: str = DEFAULT_WORKBOX_URL
    company_id: str = Field(min_length=1, max_length=36)
    api_key: SecretStr
    access_key: str = Field(min_length=1)
    secret_key: SecretStr
    signature: Literal["v1", "v2"] = "v1"
    max_concurrency: int = Field(16, ge=1, le=256)
    requests_per_second: float = Field(50.0, gt=0)


class SyncSettings(Section):
    section_name = "sync"
    #: interval ("30s", "15m", "2h") or a five-field cron expression
    schedule: str = "15m"
    max_source_shrink: float = Field(0.1, ge=0, le=1)
    max_deletes: int = Field(50, ge=0)
    max_delete_ratio: float = Field(0.1, ge=0, le=1)
    #: days after TerminationDate before a member is deleted
    delete_grace: int = Field(0, ge=0)
    include_whosoff_only: bool = False
    whosoff_only_department: str = "whosoff-only"
    name_format: str = "{given} {family}"
    #: which source's phone numbers win when both have one ("infinityhr": WhosOff only fills gaps)
    phone_precedence: Literal["infinityhr", "whosoff"] = "infinityhr"
    #: job grade / position names in display order (sortOrd = place in the list; others 1000)
    grade_order: list[str] = Field(default_factory=list)
    position_order: list[str] = Field(default_factory=list)
    #: seconds ``--run-once`` waits for another process's lease
    lease_wait: float = Field(60.0, ge=0)
    #: leader lease timing: poll/heartbeat every quarter of it; a cut-off leader loses it after about this
    lease_period: float = Field(30.0, ge=1)
    #: rolling window over which max_deletes / max_delete_ratio / max_source_shrink also apply, per kind
    delete_window: str = "24h"
    #: a held plan older than this can no longer be approved (a plan with other operations supersedes
    #: it at once)
    plan_ttl: str = "24h"
    #: a plan over the deletion budget is held whole (true), or only its deletions over the budget and
    #: what depends on them, the rest being applied (false)
    hold_whole_plan: bool = False
    #: plans are held when today is before the last run's date or more than this after it
    max_clock_jump: str = "2d"

    @field_validator("delete_window", "plan_ttl", "max_clock_jump")
    @classmethod
    def _interval(cls, v: str) -> str:
        seconds = parse_interval(v)
        if seconds is None or seconds <= 0:
            raise ValueError('must be a positive interval like "24h" or "2d"')
        return v

    def seconds(self, key: Literal["delete_window", "plan_ttl", "max_clock_jump"]) -> float:
        """One of the interval settings, in seconds."""
        value = parse_interval(getattr(self, key))
        assert value is not None  # validated
        return value

    @field_validator("name_format")
    @classmethod
    def _name_format(cls, v: str) -> str:
        try:
            v.format(given="g", first="f", middle="m", family="l")
        except (KeyError, IndexError, ValueError) as exc:
            fields = "{given} {first} {middle} {family}"
            raise ValueError(f"unknown field in name_format ({exc}); use {fields}") from None
        return v

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        interval = parse_interval(v)
        if interval is None and len(v.split()) != 5:
            raise ValueError('must be an interval like "15m" or a five-field cron expression')
        if interval is not None and interval <= 0:
            raise ValueError("must be longer than 0 seconds")
        return v


class ServerSettings(Section):
    section_name = "server"
    listen: str = "127.0.0.1:9108"
    max_staleness: float = Field(3600.0, gt=0)
    shutdown_timeout: float = Field(30.0, gt=0)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError('must be "host:port"')
        return v


class LogSettings(Section):
    section_name = "log"
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    infinityhr: InfinityHRSettings
    whosoff: WhosOffSettings
    workbox: WorkboxSettings
    sync: SyncSettings = Field(default_factory=SyncSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)

    def secret_values(self) -> list[str]:
        """Every configured secret value (for log redaction)."""
        out: list[str] = []
        for section in (self.infinityhr, self.whosoff, self.workbox):
            for name in type(section).file_keys:
                value = getattr(section, name)
                if isinstance(value, SecretStr) and value.get_secret_value():
                    out.append(value.get_secret_value())
        password = url_password(self.database.url)
        if password:
            out.append(password)
        return out

    def masked(self) -> dict[str, Any]:
        """The effective configuration with every secret replaced by ``********``."""
        data = self.model_dump(mode="python")
        for values in data.values():
            for key, value in values.items():
                if isinstance(value, SecretStr):
                    values[key] = MASK
        data["database"]["url"] = _mask_url(self.database.url)
        return data


def url_password(url: str) -> str | None:
    m = re.match(r"^[^:]+://[^:/@]*:([^@]*)@", url)
    return m.group(1) if m and m.group(1) else None


def _mask_url(url: str) -> str:
    password = url_password(url)
    return url.replace(f":{password}@", f":{MASK}@", 1) if password else url


def config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


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


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read ``path`` (or ``$SYNCD_CONFIG``), apply the environment, validate; a relative SQLite path
    (and the default database) is resolved against :func:`state_dir`."""
    file = config_path(path)
    label = str(file) if file else "environment"
    data = read_toml(file, label) if file is not None else {}
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, label)) from None
    url = resolve_database_url(settings.database.url, file)
    if url == settings.database.url:
        return settings
    return settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})


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
