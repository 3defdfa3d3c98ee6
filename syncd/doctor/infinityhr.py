"""InfinityHR: the WSDL against the configured dialect, Authenticate, one small page of records
(which configured fields are missing, which elements are unknown, which status values are unmapped)
and the departments, method or derived."""

from __future__ import annotations

import collections
import difflib

import aiohttp

from syncd.config import InfinityHRSettings, Settings
from syncd.doctor.check import Check, failed
from syncd.literal import visible
from syncd.vendors.infinityhr import InfinityHRClient
from syncd.vendors.infinityhr_models import DEFAULT_FIELDS, PRIVATE_FIELDS
from syncd.vendors.infinityhr_probe import read_wsdl, sample_records

AREA = "infinityhr"
SAMPLE = 25


def _roles(s: InfinityHRSettings, incremental: bool) -> dict[str, str]:
    roles = {"authenticate": s.methods.authenticate, "employees": s.methods.employees}
    if s.departments_from == "method":
        roles["departments"] = s.methods.departments
    if incremental:  # sync.full_every is not "0": the cycles between full reads read changes
        roles["employees_changed"] = s.methods.employees_changed
    return roles


def _action_template(namespace: str, actions: dict[str, str]) -> str | None:
    """The ``soap_action`` template every WSDL action fits (``{namespace}{method}`` first), or None."""
    for template in ("{namespace}{method}", "{namespace}/{method}"):
        if all(a == template.format(namespace=namespace, method=op) for op, a in actions.items()):
            return template
    prefixes = {a[: -len(op)] for op, a in actions.items() if a.endswith(op)}
    if len(prefixes) == 1 and len(actions) == sum(a.endswith(op) for op, a in actions.items()):
        prefix = prefixes.pop()
        if prefix.startswith(namespace):
            prefix = "{namespace}" + prefix[len(namespace) :]
        return prefix + "{method}"
    return None


def wsdl_check(
    s: InfinityHRSettings, namespace: str | None, actions: dict[str, str], *, incremental: bool = True
) -> Check:
    """The configured namespace, methods and SOAPActions against the WSDL's (``incremental``: the
    method of the reads between full reads too)."""
    fix: dict[str, dict[str, object]] = {}
    problems: list[str] = []
    ns = namespace or s.namespace
    if namespace and namespace != s.namespace:
        problems.append(f"the WSDL's targetNamespace is {visible(namespace)}, not {visible(s.namespace)}")
        fix.setdefault("infinityhr", {})["namespace"] = namespace
    template = _action_template(ns, actions) if actions else None
    if template is not None and template.format(namespace=ns, method="M") != s.soap_action.format(
        namespace=ns, method="M"
    ):
        problems.append(f"its soapActions have the form {visible(template)}, not {visible(s.soap_action)}")
        fix.setdefault("infinityhr", {})["soap_action"] = template
    for role, method in _roles(s, incremental).items():
        if method in actions:
            continue
        guesses = [op for op in actions if _looks_like(role, op)]
        if role == "departments" and not guesses:
            problems.append(f"it has no departments method ({visible(method)} is not among its operations)")
            fix.setdefault("infinityhr", {})["departments_from"] = "employees"
        elif role == "employees_changed" and not guesses:
            problems.append(
                f"it has no method for the employees changed in a date range ({visible(method)} is not "
                "among its operations): every cycle must then read everything"
            )
            fix.setdefault("sync", {})["full_every"] = "0"
        elif len(guesses) == 1:
            problems.append(
                f"it has no operation {visible(method)}; {visible(guesses[0])} looks like the {role} method"
            )
            fix.setdefault("infinityhr.methods", {})[role] = guesses[0]
        else:
            listed = ", ".join(visible(op) for op in sorted(actions)) or "none"
            problems.append(f"it has no operation {visible(method)} (its operations: {listed})")
    if problems:
        return Check(AREA, "wsdl", False, "; ".join(problems), _nest(fix))
    return Check(
        AREA, "wsdl", True, f"namespace, operations and SOAPActions match ({len(actions)} operations)"
    )


_ROLE_WORDS = {
    "authenticate": ("auth", "login", "logon", "session"), "employees": ("employee",),
    "departments": ("department", "dept"), "employees_changed": ("daterange", "modifiedsince"),
}  # fmt: skip


def _looks_like(role: str, op: str) -> bool:
    low = op.lower()
    if role == "employees_changed":  # GetEmployeeChanges answers another shape: never a guess
        return "employee" in low and any(w in low for w in _ROLE_WORDS[role])
    if role == "employees" and ("change" in low or "update" in low or "upsert" in low or "date" in low):
        return False
    return any(w in low for w in _ROLE_WORDS[role])


def _nest(fix: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """``infinityhr.methods`` as a table inside ``infinityhr`` (how the config file holds it)."""
    out: dict[str, dict[str, object]] = {}
    for section, values in fix.items():
        top, _, sub = section.partition(".")
        if sub:
            out.setdefault(top, {})[sub] = values
        else:
            out.setdefault(top, {}).update(values)
    return out


def records_check(s: InfinityHRSettings, records: list[dict[str, str | None]]) -> Check:
    """The configured element names against a sample of real records (names only, never values)."""
    if not records:
        return Check(AREA, "records", False, "the first page holds no employee records")
    seen = collections.Counter(name for r in records for name in r)
    configured = s.fields.model_dump()
    optional = {"department_name", "parent_department_code"} if s.departments_from == "method" else set()
    missing = {f: e for f, e in configured.items() if e not in seen and f not in optional}
    unknown = sorted(n for n in seen if n not in set(configured.values()) and n not in PRIVATE_FIELDS)
    status_el = configured["employment_status"]
    mapped = set(s.status_values.canonical())
    statuses = sorted({str(r[status_el]) for r in records if r.get(status_el) not in (None, "")} - mapped)
    problems: list[str] = []
    fix: dict[str, dict[str, object]] = {}
    if missing:
        named = ", ".join(f"{f} ({visible(e)})" for f, e in missing.items())
        problems.append(f"configured fields missing from the records: {named}")
        guesses = guess_fields(missing, unknown)
        if guesses:  # proposals by name likeness: the detail says so
            fix.setdefault("infinityhr", {})["fields"] = guesses
            pairs = ", ".join(f"{f} = {visible(g)}" for f, g in guesses.items())
            problems.append(f"proposed by name likeness (check them): {pairs}")
    if unknown:
        problems.append(f"elements no field reads: {', '.join(visible(n) for n in unknown)}")
    if statuses:
        proposed = guess_statuses(statuses)
        if proposed:
            current = {"active": s.status_values.active, "leave": s.status_values.leave,
                       "terminated": s.status_values.terminated}  # fmt: skip
            fix.setdefault("infinityhr", {})["status_values"] = {
                role: [*current[role], *values] for role, values in proposed.items()
            }
        problems.append(
            f"{visible(status_el)} values that infinityhr.status_values does not map: "
            f"{', '.join(visible(v) for v in statuses)} (set each under active, leave or terminated)"
        )
    ok = not missing and not statuses
    detail = "; ".join(problems) or f"every configured field is present in {len(records)} records"
    return Check(AREA, "records", ok, detail, fix)


#: element names that look like private data are never proposed for a field syncd pushes
_PRIVATE_LOOKING = ("ssn", "social", "private", "personal", "birth", "salary")


def guess_fields(missing: dict[str, str], unknown: list[str]) -> dict[str, str]:
    """For each configured field not found, the unknown element whose name is most like it (the
    contract's name or syncd's), each element used once, best pairs first; no guess below a
    similarity of 0.4, and never an element that looks like private data."""
    candidates = [u for u in unknown if not any(p in u.lower() for p in _PRIVATE_LOOKING)]
    pairs = sorted(
        (
            (max(_like(DEFAULT_FIELDS.get(f, e), u), _like(f.replace("_", ""), u)), f, u)
            for f, e in missing.items()
            for u in candidates
        ),
        reverse=True,
    )
    out: dict[str, str] = {}
    for ratio, f, u in pairs:
        if ratio >= 0.4 and f not in out and u not in out.values():
            out[f] = u
    return out


def _like(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def guess_statuses(values: list[str]) -> dict[str, list[str]]:
    """Unmapped status values that are the start of exactly one of Active / Leave / Terminated."""
    out: dict[str, list[str]] = {}
    for value in values:
        hits = [
            c for c in ("active", "leave", "terminated") if c.startswith(value.strip().lower()[:4] or "\0")
        ]
        if len(hits) == 1:
            out.setdefault(hits[0], []).append(value)
    return out


async def checks(settings: Settings, http: aiohttp.ClientSession) -> list[Check]:
    s = settings.infinityhr
    client = InfinityHRClient(http, s)
    out: list[Check] = []
    try:
        wsdl = await read_wsdl(client)
        incremental = settings.sync.full_every != "0"
        out.append(wsdl_check(s, wsdl.namespace, wsdl.actions, incremental=incremental))
    except Exception as exc:
        out.append(failed(AREA, "wsdl", exc))
    try:
        await client.sessions.get()
        out.append(
            Check(
                AREA, "authenticate", True, f"vendor {visible(s.vendor_id)} is active; a session was opened"
            )
        )
    except Exception as exc:
        out.append(failed(AREA, "authenticate", exc))
        return out
    try:
        out.append(records_check(s, await sample_records(client, SAMPLE)))
    except Exception as exc:
        out.append(failed(AREA, "records", exc))
    try:
        departments, invalid = await client.get_departments()
        how = "the departments method" if s.departments_from == "method" else "the employee records"
        extra = f", {len(invalid)} unreadable" if invalid else ""
        found = f"{len(departments)} departments from {how}{extra}"
        out.append(Check(AREA, "departments", bool(departments), found))
    except Exception as exc:
        out.append(failed(AREA, "departments", exc))
    return out
