"""Hostile SOAP responses give a clear ProtocolError with bounded memory.

The hostile bodies come from a small real server on loopback (the sandbox does not serve a 50 MB text
node or an external entity).  Memory is the test process's resident set, sampled while the client
works: libxml2 allocates outside Python, so tracemalloc alone would not see a blow-up.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import psutil
import pytest
from aiohttp import web
from pydantic import SecretStr

from syncd.config import InfinityHRSettings, WhosOffSettings
from syncd.errors import ProtocolError
from syncd.vendors import InfinityHRClient, WhosOffClient

from .conftest import FAST

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
IHR = "http://www.infinityhr.com/webservices/"
HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
ENV_OPEN = f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
ENV_CLOSE = "</soap:Body></soap:Envelope>"
AUTH_OK = (
    HEAD + ENV_OPEN + f'<AuthenticateResponse xmlns="{IHR}"><AuthenticateResult>'
    "<SessionID>6f1c2d55-0000-4000-8000-00000000abcd</SessionID><IsVendorActive>true</IsVendorActive>"
    "<SessionStart>2026-01-01T00:00:00Z</SessionStart><SessionEnd>2026-01-01T00:20:00Z</SessionEnd>"
    "</AuthenticateResult></AuthenticateResponse>" + ENV_CLOSE
)
DEPTS_OPEN = f'<GetDepartmentsResponse xmlns="{IHR}"><GetDepartmentsResult><Departments><DepartmentInfo>'
DEPTS_CLOSE = "</DepartmentInfo></Departments></GetDepartmentsResult></GetDepartmentsResponse>"
LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">'
    + "".join(f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">' for i in range(1, 10))
    + "]>"
)
BODIES = {
    "billion": HEAD + LAUGHS + ENV_OPEN + DEPTS_OPEN + "<Name>&lol9;</Name>" + DEPTS_CLOSE + ENV_CLOSE,
    "xxe": HEAD
    + '<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + ENV_OPEN
    + DEPTS_OPEN
    + "<DepartmentCode>&xxe;</DepartmentCode>"
    + DEPTS_CLOSE
    + ENV_CLOSE,
    "external_dtd": HEAD
    + '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">'
    + ENV_OPEN
    + DEPTS_OPEN
    + "<DepartmentCode>X</DepartmentCode>"
    + DEPTS_CLOSE
    + ENV_CLOSE,
}
MB = 1024 * 1024


async def _huge_text(request: web.Request) -> web.StreamResponse:
    """A 50 MB text node, streamed so the server side does not hold it either."""
    resp = web.StreamResponse(headers={"Content-Type": "text/xml; charset=utf-8"})
    await resp.prepare(request)
    await resp.write((HEAD + ENV_OPEN + DEPTS_OPEN + "<DepartmentCode>X</DepartmentCode><Name>").encode())
    block = b"A" * MB
    try:
        for _ in range(50):
            await resp.write(block)
        await resp.write(("</Name>" + DEPTS_CLOSE + ENV_CLOSE).encode())
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the client stopped reading: that is the point
    return resp


async def _gzip_bomb(request: web.Request, *, in_record: bool) -> web.StreamResponse:
    """200 MB of tiny XML elements, gzipped to well under 1 MB, sent as Content-Encoding: gzip.

    ``in_record``: inside a DepartmentInfo, else directly in the Result; both are refused by the cap
    on elements held between two records.
    """
    opening = DEPTS_OPEN if in_record else DEPTS_OPEN.split("<Departments>")[0]
    closing = DEPTS_CLOSE if in_record else "</GetDepartmentsResult></GetDepartmentsResponse>"
    resp = web.StreamResponse(headers={"Content-Type": "text/xml; charset=utf-8", "Content-Encoding": "gzip"})
    await resp.prepare(request)
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"<a/>" * (MB // 4)
    try:
        await resp.write(z.compress((HEAD + ENV_OPEN + opening + "<Pad>").encode()))
        for _ in range(200):
            await resp.write(z.compress(block))
        await resp.write(z.compress(("</Pad>" + closing + ENV_CLOSE).encode()) + z.flush())
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass
    return resp


def _half_gzip(body: str) -> web.Response:
    """A complete HTTP response whose body is a gzip stream cut in half."""
    data = gzip.compress(body.encode(), mtime=0)
    return web.Response(
        body=data[: len(data) // 2], headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"}
    )


async def _whosoff(request: web.Request) -> web.StreamResponse:
    await request.read()
    if request.match_info["action"] == "authenticate/with-credentials":
        token = {"access_token": "tok-hostile-test-0001", "token_expiry_date": "2099-01-01T00:00:00Z"}
        return web.json_response({"Data": [{"token": token}], "Errors": []})
    users = [{"user_id": i, "first_name": "x" * 50} for i in range(200)]
    return _half_gzip(json.dumps({"Data": users, "Errors": []}))


async def _endpoint(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    await request.read()
    if request.headers.get("SOAPAction") == f'"{IHR}Authenticate"':
        return web.Response(text=AUTH_OK, content_type="text/xml", charset="utf-8")
    if kind == "huge":
        return await _huge_text(request)
    if kind == "gzip_cut":
        body = ENV_OPEN + DEPTS_OPEN + "<DepartmentCode>X</DepartmentCode>" * 100 + DEPTS_CLOSE + ENV_CLOSE
        return _half_gzip(HEAD + body)
    if kind == "padded":  # few elements, but more bytes than max_response_bytes allows
        body = ENV_OPEN + DEPTS_OPEN + " " * (3 * MB) + DEPTS_CLOSE + ENV_CLOSE
        return web.Response(text=HEAD + body, content_type="text/xml", charset="utf-8")
    if kind.startswith("bomb"):
        return await _gzip_bomb(request, in_record=kind == "bomb_record")
    return web.Response(text=BODIES[kind], content_type="text/xml", charset="utf-8")


@pytest.fixture
async def hostile_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/whosoff/v4/{action:.+}", _whosoff)
    app.router.add_post("/{kind}", _endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def peak_rss_delta(work: Callable[[], Awaitable[object]]) -> tuple[int, BaseException | None]:
    """Run ``work`` while sampling this process's RSS; (peak − baseline bytes, exception raised)."""
    proc = psutil.Process()
    baseline = proc.memory_info().rss
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    error: BaseException | None = None
    try:
        async with asyncio.timeout(30):
            await work()
    except Exception as exc:  # returned to the test
        error = exc
    finally:
        done.set()
        await sampler
    peak = max(peak, proc.memory_info().rss)
    return peak - baseline, error


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("billion", "DTD or entity declaration"),
        ("xxe", "DTD or entity declaration"),
        ("external_dtd", "DTD or entity declaration"),
        ("huge", "Text node too long"),
        ("bomb_record", "record holds more than"),
        ("bomb_flat", "record holds more than"),
        ("padded", "larger than max_response_bytes"),
        ("gzip_cut", "truncated gzip stream"),
    ],
)
async def test_hostile_xml_is_refused_with_bounded_memory(
    hostile_url: str, http: aiohttp.ClientSession, kind: str, reason: str
) -> None:
    limit = 2 * MB if kind == "padded" else 64 * MB
    settings = InfinityHRSettings(
        url=f"{hostile_url}/{kind}", vendor_id="v", vendor_password=SecretStr("p-hostile-test"),
        max_response_bytes=limit, **FAST,
    )  # fmt: skip
    client = InfinityHRClient(http, settings)
    delta, error = await peak_rss_delta(client.get_departments)
    assert isinstance(error, ProtocolError), repr(error)
    assert error.vendor == "infinityhr" and error.method == "GetDepartments"
    assert reason in str(error)
    assert "root:" not in str(error)  # /etc/passwd was not read into anything
    assert delta < 200 * MB, f"RSS grew by {delta / MB:.0f} MB"


async def test_truncated_gzip_json_is_a_protocol_error(hostile_url: str, http: aiohttp.ClientSession) -> None:
    settings = WhosOffSettings(
        url=f"{hostile_url}/whosoff", app_id="a", client_secret=SecretStr("cs-hostile-test"), username="u",
        password=SecretStr("pw-hostile-test"), ip_address="127.0.0.1", **FAST,
    )  # fmt: skip
    with pytest.raises(ProtocolError, match="truncated gzip stream"):
        await WhosOffClient(http, settings).get_users()


async def test_long_hostile_tags_are_not_kept_in_the_name_cache() -> None:
    """The reader caches tag → local name; a hostile namespace of megabytes must not be pinned."""
    from syncd.vendors import _soap

    namespace = "urn:" + "x" * 100_000
    body = (
        HEAD
        + ENV_OPEN
        + DEPTS_OPEN.replace("<DepartmentInfo>", "")
        + f'<DepartmentInfo><DepartmentCode>D1</DepartmentCode><Junk xmlns="{namespace}">a</Junk>'
        + "<Name>One</Name></DepartmentInfo>"
        + DEPTS_CLOSE.replace("</DepartmentInfo>", "", 1)
        + ENV_CLOSE
    ).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    result = await _soap.read_soap(
        chunks(), vendor="infinityhr", method="GetDepartments",
        record_tags=frozenset({"DepartmentInfo"}), on_record=_soap.fields_of,
    )  # fmt: skip
    assert result.records == [{"DepartmentCode": "D1", "Junk": "a", "Name": "One"}]
    assert all(len(tag) <= 256 for tag in _soap._NAMES)
