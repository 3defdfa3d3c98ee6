"""Raw baselines on the sandbox's data, with no syncd code at all.

(a) fetch + parse every page: InfinityHR SOAP by hand (Authenticate, GetDepartments, GetEmployeesAll
    page by page, parsed with lxml), WhosOff by hand (nonce + SHA-512 secret, users and departments
    parsed with ``json``); the two vendors at once, as syncd's pull does.
(b) bulk insert of the same rows (id + JSON payload) with the driver alone: ``sqlite3.executemany``
    into a fresh file, or asyncpg ``copy_records_to_table`` into fresh tables.

Run in its own process so its memory does not count against the engine's:
``python -m bench.baseline --sandbox URL --db sqlite|postgres [--pg-url URL] [--page-size 1000]``.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import sqlite3
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from bench.control import Control

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
IHR_NS = "http://www.infinityhr.com/webservices/"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_Q = "{" + IHR_NS + "}"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

Rows = dict[str, list[tuple[str, dict[str, Any]]]]


def envelope(method: str, fields: dict[str, str]) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body>'
        f'<{method} xmlns="{IHR_NS}"><request>{inner}</request></{method}></soap:Body></soap:Envelope>'
    ).encode()


def _records(root: etree._Element, tag: str) -> list[dict[str, str | None]]:
    out = []
    for rec in root.iter(_Q + tag):
        out.append(
            {child.tag[len(_Q) :]: (None if child.get(XSI_NIL) == "true" else child.text) for child in rec}
        )
    return out


async def fetch_infinityhr(http: aiohttp.ClientSession, url: str, creds: dict[str, str], size: int) -> Rows:
    async def soap(method: str, fields: dict[str, str]) -> etree._Element:
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{IHR_NS}{method}"'}
        async with http.post(url, data=envelope(method, fields), headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{method}: HTTP {resp.status}: {body[:300]!r}")
        return etree.fromstring(body, PARSER)

    auth = await soap("Authenticate", {"VendorID": creds["vendor_id"], "VendorPwd": creds["vendor_password"]})
    sid = auth.findtext(f".//{_Q}SessionID")
    base = {"VendorID": creds["vendor_id"], "SessionID": sid or "", "CompanyID": creds["company_id"]}
    depts = _records(await soap("GetDepartments", base), "DepartmentInfo")
    employees: list[dict[str, str | None]] = []
    page = 1
    while True:
        root = await soap("GetEmployeesAll", {**base, "PageNumber": str(page), "PageSize": str(size)})
        employees += _records(root, "EmployeeInfo")
        total = int(root.findtext(f".//{_Q}TotalCount") or "0")
        if page * size >= total:
            break
        page += 1
    return {
        "infinityhr_department": [(str(d["DepartmentCode"]), d) for d in depts],
        "infinityhr_employee": [(str(e["EmployeeID"]), e) for e in employees],
    }


async def fetch_whosoff(http: aiohttp.ClientSession, root: str, creds: dict[str, str]) -> Rows:
    alphabet = string.ascii_letters + string.digits
    nonce = "".join(secrets.choice(alphabet) for _ in range(32))
    secret = hashlib.sha512((nonce + creds["client_secret"]).encode()).hexdigest()
    headers = {"app-id": creds["app_id"], "Content-Type": "application/json", "Accept-Encoding": "gzip"}
    body = {
        "username": creds["username"], "password": creds["password"], "ip_address": creds["ip_address"],
        "nonce": nonce, "secret": secret, "app_id": creds["app_id"],
    }  # fmt: skip
    async with http.post(f"{root}/v4/authenticate/with-credentials", json=body, headers=headers) as resp:
        token = json.loads(await resp.read())["Data"][0]["token"]["access_token"]
    headers["Authorization"] = f"Bearer {token}"
    query = json.dumps({"map_type_id": 0, "map_id": 0, "status_id": 99})
    async with http.post(f"{root}/v4/user/retrieve", data=query, headers=headers) as resp:
        users = json.loads(await resp.read())["Data"]
    async with http.get(f"{root}/v4/department/retrieve/", headers=headers) as resp:
        depts = json.loads(await resp.read())["Data"]
    return {
        "whosoff_user": [(str(u["user_id"]), u) for u in users],
        "whosoff_department": [(str(d["department_id"]), d) for d in depts],
    }


async def fetch_all(control: Control, page_size: int) -> Rows:
    info = control.index()
    urls, creds = info["urls"], info["credentials"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        ihr, wo = await asyncio.gather(
            fetch_infinityhr(http, urls["infinityhr"], creds["infinityhr"], page_size),
            fetch_whosoff(http, urls["whosoff"], creds["whosoff"]),
        )
    return {**ihr, **wo}


def insert_sqlite(rows: Rows, directory: str) -> float:
    path = Path(directory) / "raw.db"
    conn = sqlite3.connect(path)
    try:
        t0 = time.perf_counter()
        with conn:
            for table, items in rows.items():
                conn.execute(f"CREATE TABLE raw_{table} (id TEXT PRIMARY KEY, payload TEXT NOT NULL)")
                conn.executemany(
                    f"INSERT INTO raw_{table} (id, payload) VALUES (?, ?)",
                    ((rid, json.dumps(p, ensure_ascii=False)) for rid, p in items),
                )
        return time.perf_counter() - t0
    finally:
        conn.close()


async def insert_postgres(rows: Rows, url: str) -> float:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        for table in rows:
            await conn.execute(f"DROP TABLE IF EXISTS bench_raw_{table}")
        t0 = time.perf_counter()
        async with conn.transaction():
            for table, items in rows.items():
                await conn.execute(
                    f"CREATE TABLE bench_raw_{table} (id TEXT PRIMARY KEY, payload JSON NOT NULL)"
                )
                await conn.copy_records_to_table(
                    f"bench_raw_{table}",
                    records=[(rid, json.dumps(p, ensure_ascii=False)) for rid, p in items],
                    columns=["id", "payload"],
                )
        seconds = time.perf_counter() - t0
        for table in rows:
            await conn.execute(f"DROP TABLE IF EXISTS bench_raw_{table}")
        return seconds
    finally:
        await conn.close()


PUSH_OPS = 2000
PUSH_CONCURRENCY = 16
PUSH_LATENCY_MS = 20.0


async def push_raw(control: Control) -> dict[str, Any]:
    """The push ceiling of this machine and sandbox: 2,000 signed WORKBOX creates from a bare aiohttp
    client at the engine's concurrency and latency (no syncd code: the v1 signature is made here).
    WORKBOX and the request log are reset afterwards, so the engine starts from an empty WORKBOX."""
    import base64
    import hmac
    from urllib.parse import urlsplit

    info = control.index()
    base, creds = info["urls"]["workbox"], info["credentials"]["workbox"]
    split = urlsplit(base)
    origin, path0 = f"{split.scheme}://{split.netloc}", split.path.rstrip("/")
    control.set_faults("workbox", latency_ms=PUSH_LATENCY_MS, jitter_ms=0.0)
    sem = asyncio.Semaphore(PUSH_CONCURRENCY)

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        async with sem:
            uri = f"{path0}/organization/company/{creds['company_id']}/job-grade/raw-{i}"
            ts = str(int(time.time() * 1000))
            message = f"POST {uri}\n{ts}\n{creds['api_key']}\n{creds['access_key']}"
            digest = hmac.new(creds["secret_key"].encode(), message.encode(), hashlib.sha256).digest()
            headers = {
                "x-ncp-apigw-timestamp": ts, "x-ncp-apigw-api-key": creds["api_key"],
                "x-ncp-iam-access-key": creds["access_key"], "Content-Type": "application/json",
                "x-ncp-apigw-signature-v1": base64.b64encode(digest).decode(),
            }  # fmt: skip
            body = json.dumps({"name": f"raw {i}", "sortOrd": 1})
            async with http.post(origin + uri, data=body, headers=headers) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"raw push: HTTP {resp.status} {await resp.text()}")

    async with aiohttp.ClientSession() as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(http, i) for i in range(PUSH_OPS)))
        seconds = time.perf_counter() - t0
    control.reset_workbox()
    control.reset_requests()
    return {"push_ops": PUSH_OPS, "push_s": seconds, "push_ops_per_s": PUSH_OPS / seconds}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    control = Control(args.sandbox)
    t0 = time.perf_counter()
    rows = await fetch_all(control, args.page_size)
    fetch_s = time.perf_counter() - t0
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="syncd-bench-raw-") as tmp:
            insert_s = insert_sqlite(rows, tmp)
    else:
        insert_s = await insert_postgres(rows, args.pg_url)
    counts = {table: len(items) for table, items in rows.items()}
    return {
        "fetch_parse_s": fetch_s,
        "insert_s": insert_s,
        "rows": sum(counts.values()),
        "counts": counts,
        **(await push_raw(control)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baseline")
    ap.add_argument("--sandbox", required=True, help="sandbox base URL")
    ap.add_argument("--db", choices=("sqlite", "postgres"), required=True)
    ap.add_argument("--pg-url", default="")
    ap.add_argument("--page-size", type=int, default=1000)
    args = ap.parse_args(argv)
    result = asyncio.run(main_async(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
