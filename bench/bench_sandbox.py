"""Sandbox scale benchmark: generate 100,000 employees and read them all with paged GetEmployeesAll.

Not a test. Run: ``.venv/bin/python -m bench.bench_sandbox [--employees N] [--page-size N]``.
The client side is plain aiohttp + lxml built here (not syncd's client). Prints generation time,
full-read time, rows/s and the process's peak RSS (server and client share this process).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time

import aiohttp
from lxml import etree

from bench.baseline import IHR_NS, envelope
from syncd.sandbox import SandboxOptions, generate_company, run_sandbox

NS = {"i": IHR_NS}


def headers(method: str) -> dict[str, str]:
    return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{IHR_NS}{method}"'}


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def main(employees: int, page_size: int) -> None:
    rss_start = peak_rss_mb()
    t0 = time.perf_counter()
    company = generate_company(employees, seed=1)
    gen_s = time.perf_counter() - t0
    rss_gen = peak_rss_mb()
    print(
        f"generate: {employees} employees, {len(company.departments)} departments, "
        f"{len(company.whosoff_users)} WhosOff users in {gen_s:.2f} s (peak RSS {rss_gen:.0f} MB)"
    )
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    async with run_sandbox(SandboxOptions(employees=employees, port=0), company=company) as sb:
        creds = sb.credentials["infinityhr"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            auth = {"VendorID": creds["vendor_id"], "VendorPwd": creds["vendor_password"]}
            async with http.post(
                sb.infinityhr_url, data=envelope("Authenticate", auth), headers=headers("Authenticate")
            ) as resp:
                sid = etree.fromstring(await resp.read(), parser).findtext(".//i:SessionID", namespaces=NS)
            assert sid
            rows = 0
            ids: list[str] = []
            page = 1
            bytes_read = 0
            t1 = time.perf_counter()
            while True:
                fields = {
                    "VendorID": creds["vendor_id"],
                    "SessionID": sid,
                    "CompanyID": creds["company_id"],
                    "PageNumber": str(page),
                    "PageSize": str(page_size),
                }
                async with http.post(
                    sb.infinityhr_url,
                    data=envelope("GetEmployeesAll", fields),
                    headers=headers("GetEmployeesAll"),
                ) as resp:
                    body = await resp.read()
                    assert resp.status == 200, body[:500]
                bytes_read += len(body)
                root = etree.fromstring(body, parser)
                total = int(root.findtext(".//i:TotalCount", namespaces=NS) or "0")
                page_ids = [
                    e.text or "" for e in root.iterfind(".//i:EmployeeInfo/i:EmployeeID", namespaces=NS)
                ]
                ids += page_ids
                rows += len(page_ids)
                if page * page_size >= total:
                    break
                page += 1
            read_s = time.perf_counter() - t1
    assert rows == employees and ids == sorted(ids) and len(set(ids)) == rows
    print(
        f"read:     {rows} rows in {page} pages of {page_size} ({bytes_read / 1e6:.1f} MB XML) "
        f"in {read_s:.2f} s = {rows / read_s:,.0f} rows/s"
    )
    print(f"memory:   peak RSS {peak_rss_mb():.0f} MB (at start {rss_start:.0f} MB)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--employees", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=1000)
    args = ap.parse_args()
    asyncio.run(main(args.employees, args.page_size))
