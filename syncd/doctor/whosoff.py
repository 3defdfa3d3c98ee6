"""WhosOff: authentication, the user list (how many, under which key the e-mail comes), departments."""

from __future__ import annotations

import aiohttp

from syncd.config import Settings
from syncd.doctor.check import Check, failed
from syncd.vendors.whosoff import WhosOffClient
from syncd.vendors.whosoff_models import EMAIL_FIELDS

AREA = "whosoff"


def users_check(email_field: str, users: list[object]) -> Check:
    records = [u for u in users if isinstance(u, dict)]
    present = {k: sum(1 for u in records if u.get(k)) for k in EMAIL_FIELDS}
    keys = ", ".join(f"{k} in {n}" for k, n in present.items() if n) or "no e-mail key in any"
    detail = f"{len(records)} users; e-mail: {keys}"
    used = [k for k, n in present.items() if n]
    if email_field != "auto" and present.get(email_field, 0) == 0 and used:
        return Check(AREA, "users", False, f"{detail}; whosoff.email_field = {email_field!r} finds none",
                     {"whosoff": {"email_field": used[0] if len(used) == 1 else "auto"}})  # fmt: skip
    if records and not used:
        return Check(AREA, "users", False, f"{detail}: users cannot be matched by e-mail")
    return Check(AREA, "users", True, detail)


async def checks(settings: Settings, http: aiohttp.ClientSession) -> list[Check]:
    s = settings.whosoff
    client = WhosOffClient(http, s)
    out: list[Check] = []
    try:
        await client.tokens.get()
        out.append(Check(AREA, "authenticate", True, f"a token was issued at {s.api_root}"))
    except Exception as exc:
        out.append(failed(AREA, "authenticate", exc))
        return out
    try:
        out.append(users_check(s.email_field, await client.raw_users()))
    except Exception as exc:
        out.append(failed(AREA, "users", exc))
    try:
        departments, invalid = await client.get_departments()
        extra = f", {len(invalid)} unreadable" if invalid else ""
        out.append(Check(AREA, "departments", True, f"{len(departments)} departments{extra}"))
    except Exception as exc:
        out.append(failed(AREA, "departments", exc))
    return out
