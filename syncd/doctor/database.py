"""The staging database: reachable, and its schema current (nothing is migrated here)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from syncd.config import Settings
from syncd.db import engine as dbe
from syncd.doctor.check import Check, failed
from syncd.literal import visible


def _where(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"the SQLite database {visible(parsed.database or '')}"
    return f"the PostgreSQL database {visible(f'{parsed.host}:{parsed.port or 5432}/{parsed.database}')}"


async def checks(settings: Settings) -> list[Check]:
    url = settings.database.url
    problem = dbe.sqlite_location_problem(url)
    if problem:
        return [Check("database", "reachable", False, problem)]
    engine = dbe.create_engine(url)
    try:
        current = await dbe.current_revision(engine)
    except Exception as exc:
        return [failed("database", "reachable", exc)]
    finally:
        await engine.dispose()
    head = dbe.head_revision()
    where = _where(url)
    if current == head:
        return [Check("database", "schema", True, f"{where} is at the current schema ({head})")]
    state = "empty (a first run creates it)" if current is None else f"at {current}, not {head}"
    ok = current is None and settings.database.auto_migrate
    return [Check("database", "schema", ok, f"{where} is {state}",
                  hint=None if ok else "run `syncd db upgrade` with this configuration")]  # fmt: skip
