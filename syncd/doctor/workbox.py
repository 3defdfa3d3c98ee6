"""WORKBOX: a harmless signed request per kind (DELETE of a key that cannot exist), telling apart a
bad signature (and whether the other variant works), wrong keys or permission, a company id refused,
the API switched off and a kind whose organisation connection is off; the clock offset."""

from __future__ import annotations

from typing import cast

import aiohttp

from syncd.config import Settings
from syncd.doctor.check import Check, failed
from syncd.errors import RejectedError, VendorConfigError
from syncd.vendors.workbox import KINDS, Kind, WorkboxClient

AREA = "workbox"
_OTHER = {"v1": "v2", "v2": "v1"}
_CONSOLE = "NCP console, WORKBOX > Developers > Connect organisation"


async def checks(settings: Settings, http: aiohttp.ClientSession) -> list[Check]:
    s = settings.workbox
    client = WorkboxClient(http, s)
    out: list[Check] = []
    for kind in KINDS:
        out.append(await _probe(settings, http, client, cast(Kind, kind)))
        if not out[-1].ok and out[-1].name == "authentication":
            return out  # every kind would say the same
    offset = client.clock_offset_ms / 1000
    said = f"the gateway's clock is {offset:+.1f}s from ours" + ("; corrected when signing" if offset else "")
    out.append(Check(AREA, "clock", abs(offset) < 60, said))
    return out


async def _probe(settings: Settings, http: aiohttp.ClientSession, client: WorkboxClient, kind: Kind) -> Check:
    s = settings.workbox
    try:
        key = await client.probe(kind)
        return Check(
            AREA, kind, True, f"signed DELETE of the made-up key {key} answered 'unknown key' (E904)"
        )
    except VendorConfigError as exc:
        if exc.code in ("200", "401"):
            other = _OTHER[s.signature]
            try:
                await WorkboxClient(http, s.model_copy(update={"signature": other})).probe(kind)
            except Exception:
                return Check(AREA, "authentication", False, f"{exc}; the {other} signature fails too",
                             hint="check workbox.api_key, access_key and secret_key")  # fmt: skip
            return Check(AREA, "authentication", False,
                         f"the gateway refuses the {s.signature} signature and accepts {other}",
                         {"workbox": {"signature": other}})  # fmt: skip
        if exc.code == "210":
            return Check(AREA, "authentication", False, str(exc), hint="give the API key the WORKBOX product")
        if exc.code == "E903":
            return Check(AREA, kind, False, f"{kind}: {exc}", hint=f"switch {kind} ON in the {_CONSOLE}")
        return failed(AREA, kind, exc)
    except RejectedError as exc:
        if exc.code == "E900":
            hint = "check workbox.company_id (the WORKBOX company id, at most 36 characters)"
            return Check(AREA, kind, False, f"{exc}: the company id or the key is refused", hint=hint)
        return failed(AREA, kind, exc)
    except Exception as exc:
        return failed(AREA, kind, exc)
