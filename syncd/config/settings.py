"""The whole configuration (:class:`Settings`) and its non-vendor sections: database, sync rules,
server, log."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from syncd.config.section import Section, parse_interval
from syncd.config.vendors import InfinityHRSettings, WhosOffSettings, WorkboxSettings

ENV_PREFIX = "SYNCD_"
MASK = "********"
#: the default ``database.url``: ``syncd.db`` in the state directory (resolved by ``load_settings``)
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///syncd.db"


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
    #: every entity WORKBOX holds is told again (re-asserted: drift repair) at least this often, spread
    #: over the cycles; 0 turns it off
    reassert_days: float = Field(7.0, ge=0)
    #: first-run mode: a create for every desired entity, whatever the ledger says (never a delete),
    #: and the adopted / created / collided counts reported; set it back to false afterwards
    adopt: bool = False
    #: how often InfinityHR's employees are read whole; between full reads a cycle reads only the
    #: employees changed since the last trusted read (``[infinityhr.date_range]``) and WhosOff and the
    #: departments are not read.  Deletions of people HR no longer lists come only from full reads.
    #: ``"0"``: every cycle reads everything
    full_every: str = "6h"

    @field_validator("full_every")
    @classmethod
    def _cadence(cls, v: str) -> str:
        if v.strip() == "0":
            return "0"
        seconds = parse_interval(v)
        if seconds is None or seconds < 0:
            raise ValueError('must be an interval like "6h", or "0" for a full read every cycle')
        return v

    @field_validator("delete_window", "plan_ttl", "max_clock_jump")
    @classmethod
    def _interval(cls, v: str) -> str:
        seconds = parse_interval(v)
        if seconds is None or seconds <= 0:
            raise ValueError('must be a positive interval like "24h" or "2d"')
        return v

    def seconds(self, key: Literal["delete_window", "plan_ttl", "max_clock_jump", "full_every"]) -> float:
        """One of the interval settings, in seconds (``full_every = "0"``: 0)."""
        value = parse_interval(getattr(self, key)) if getattr(self, key) != "0" else 0.0
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
