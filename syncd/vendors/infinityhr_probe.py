"""What ``syncd doctor`` reads from InfinityHR besides the sync's own calls: the WSDL, and a small
page of records as element names (read-only)."""

from __future__ import annotations

from typing import NamedTuple

import aiohttp
from lxml import etree

from syncd.errors import ProtocolError, RejectedError
from syncd.vendors._soap import fields_of
from syncd.vendors.infinityhr import VENDOR, InfinityHRClient
from syncd.vendors.infinityhr_models import PRIVATE_FIELDS
from syncd.vendors.transport import read_bounded


class Wsdl(NamedTuple):
    """What a WSDL says of the dialect: its target namespace and each operation's soapAction."""

    namespace: str | None
    actions: dict[str, str]


async def read_wsdl(client: InfinityHRClient) -> Wsdl:
    """The service's WSDL (``wsdl_url``, default ``url?WSDL``), read-only; parsed without entities,
    DTDs or network access."""
    s = client.settings
    url = s.wsdl_url or f"{s.url}?WSDL"

    async def handle(resp: aiohttp.ClientResponse) -> Wsdl:
        if resp.status != 200:
            raise RejectedError(VENDOR, f"the WSDL at {url} answered HTTP {resp.status}", method="WSDL")
        raw = await read_bounded(resp, VENDOR, "WSDL", s.max_response_bytes)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        try:
            root = etree.fromstring(raw, parser)
        except etree.XMLSyntaxError as exc:
            raise ProtocolError(VENDOR, f"the WSDL at {url} is not XML: {exc}", method="WSDL") from None
        actions: dict[str, str] = {}
        for op in root.iter("{http://schemas.xmlsoap.org/wsdl/}operation"):
            for child in op:
                action = child.get("soapAction") if isinstance(child.tag, str) else None
                if action is not None and child.tag.endswith("}operation"):
                    actions[str(op.get("name"))] = action
        return Wsdl(root.get("targetNamespace"), actions)

    return await client._transport.request("GET", url, method="WSDL", handle=handle)


async def sample_records(client: InfinityHRClient, size: int = 5) -> list[dict[str, str | None]]:
    """The first ``size`` employee records as element name → text (private fields dropped by name):
    what ``syncd doctor`` compares with ``[infinityhr.fields]`` (it shows names, never values)."""
    result = await client._call(
        client.settings.methods.employees, page=1, page_size=size,
        record_tags=frozenset({"EmployeeInfo"}), on_record=lambda el: fields_of(el, drop=PRIVATE_FIELDS),
    )  # fmt: skip
    return [r for r in result.records if isinstance(r, dict)]
