"""SOAP 1.1 envelopes (built with lxml) and a hardened, streaming reader for SOAP responses.

The reader feeds the body to an :class:`lxml.etree.XMLPullParser` chunk by chunk as it arrives, so a
page of a thousand employees never exists twice in memory, and every record element is handed to a
callback and cleared as soon as it ends.  The parser reports the ends of records (and of the result
and a Fault) only: the elements inside are built by libxml2 without a Python step each (issue 18: the
pull at the parser's speed).  It is hardened against hostile XML:

* any ``<!DOCTYPE`` / ``<!ENTITY`` declaration is refused before the parser sees it (so no internal
  entity expansion — "billion laughs" — and no external entity or DTD fetch);
* the parser itself is configured with ``resolve_entities=False, no_network=True, load_dtd=False,
  huge_tree=False`` as a second line (libxml2 then also refuses a single text node over 10 MB);
* the body size is bounded by ``max_response_bytes`` while it is read (see
  :func:`syncd.vendors.transport.iter_bounded`);
* no record, and nothing between two records, may hold more than :data:`MAX_RECORD_ELEMENTS`
  elements (counted in the bytes, see :class:`_Reader`).

Everything that goes wrong while reading is a :class:`~syncd.errors.ProtocolError`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from syncd.errors import ProtocolError

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_OVERLAP = max(len(f) for f in _FORBIDDEN) - 1
#: elements one record (or a Fault) may hold before the response is refused as hostile
MAX_RECORD_ELEMENTS = 2000
_TOO_MANY = f"a record holds more than {MAX_RECORD_ELEMENTS} elements (or as many are outside)"


def build_envelope(
    namespace: str,
    method: str,
    request: Sequence[tuple[str, str | None]],
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """``<soap:Envelope><soap:Body><{method}><request>…</request>{extra}</{method}>…`` as UTF-8 bytes.

    ``None`` values are left out (an absent optional element).  Every body element is in ``namespace``.
    """
    q = "{" + namespace + "}"
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS})
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    method_el = etree.SubElement(body, q + method, nsmap={None: namespace})  # type: ignore[dict-item]
    req = etree.SubElement(method_el, q + "request")
    for name, value in request:
        if value is not None:
            etree.SubElement(req, q + name).text = value
    for name, value in extra:
        etree.SubElement(method_el, q + name).text = value
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


@functools.lru_cache(maxsize=1024)
def _local(tag: str) -> str:
    """``{namespace}Name`` → ``Name`` (cached: a page repeats the same few dozen tags)."""
    return tag.rpartition("}")[2]


def text_of(el: etree._Element) -> str | None:
    """An element's text: ``None`` for ``xsi:nil``, an empty element or whitespace only."""
    if el.get(XSI_NIL) in ("true", "1"):
        return None
    text = el.text
    if text is None or not text.strip():
        return None
    return text.strip()


def fields_of(
    el: etree._Element, drop: frozenset[str] = frozenset(), keep: frozenset[str] | None = None
) -> dict[str, str | None]:
    """Child elements (local name → text, as :func:`text_of`) of a flat record element, leaving out
    ``drop`` names, names not in ``keep`` (when given) and children that have children of their own.

    The hot loop of every SOAP read (a thousand records of twenty fields per page): written inline
    rather than through :func:`_local` / :func:`text_of`.
    """
    out: dict[str, str | None] = {}
    names = _NAMES
    for child in el:
        tag = child.tag
        name = names.get(tag)
        if name is None:
            name = _local(tag) if isinstance(tag, str) else ""
            if isinstance(tag, str) and len(tag) <= _TAG_MAX and len(names) < _NAMES_MAX:
                names[tag] = name
        if not name or name in drop or (keep is not None and name not in keep) or len(child):
            continue
        text = child.text
        if text is not None:
            text = text.strip() or None
            if text is not None and child.get(XSI_NIL) in _TRUE:
                text = None
        out[name] = text
    return out


#: full tag → local name, for the tags seen so far (bounded: a hostile response may invent tags)
_NAMES: dict[str, str] = {}
_NAMES_MAX = 4096
#: longer tags are not cached (a hostile namespace URI may be megabytes long)
_TAG_MAX = 256
_TRUE = ("true", "1")


@dataclass
class Fault:
    faultcode: str
    faultstring: str
    exception_type: str | None


@dataclass
class SoapResult:
    """What a response held: a fault, or the scalar fields of ``{Method}Result`` and the records."""

    fault: Fault | None = None
    scalars: dict[str, str | None] = field(default_factory=dict)
    records: list[Any] = field(default_factory=list)
    saw_result: bool = False


async def read_soap(
    chunks: AsyncIterator[bytes],
    *,
    vendor: str,
    method: str,
    record_tags: frozenset[str],
    on_record: Callable[[etree._Element], Any],
    status: int | None = None,
) -> SoapResult:
    """Parse a SOAP response streamed as ``chunks``.

    Each element whose local name is in ``record_tags`` is passed to ``on_record`` when it ends (its
    return value is collected in ``records``) and then cleared.  Scalar children of the
    ``{method}Result`` element land in ``scalars``; a ``soap:Fault`` in ``fault``.
    """
    reader = _Reader(vendor, method, record_tags, on_record, status)
    try:
        async for chunk in chunks:
            reader.feed(chunk)
        reader.close()
    except (etree.XMLSyntaxError, etree.LxmlError) as exc:
        raise reader.fail(_short(str(exc))) from None
    return reader.result


def _pull_parser(tags: Sequence[str]) -> etree.XMLPullParser:
    """An "end"-events parser for ``tags`` only that resolves no entity, fetches nothing and keeps no
    comment or PI: libxml2 builds every other element without one Python step."""
    return etree.XMLPullParser(
        events=("end",),
        tag=list(tags),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


#: bytes given to the parser at a time (the element budget is checked between them)
_SLICE = 64 * 1024


class _Reader:
    """One streamed read: the parser, what it has found so far, and the element budget.

    The parser reports only the ends of records, of ``{method}Result`` and of a Fault.  The budget
    counts start tags in the bytes themselves (``<`` not followed by ``/``, C-speed ``bytes.count``):
    more than :data:`MAX_RECORD_ELEMENTS` of them fed since the last slice in which a record ended,
    and the response is refused.  A record, or whatever lies between two records, therefore never
    holds more than that plus one slice's worth of elements.
    """

    def __init__(
        self,
        vendor: str,
        method: str,
        record_tags: frozenset[str],
        on_record: Callable[[etree._Element], Any],
        status: int | None,
    ) -> None:
        self.vendor, self.method, self.status = vendor, method, status
        self.on_record = on_record
        self.result_tag = f"{method}Result"
        self.fault_tag = f"{{{SOAP_NS}}}Fault"
        tags = [*(f"{{*}}{t}" for t in sorted(record_tags)), f"{{*}}{self.result_tag}", self.fault_tag]
        self.parser = _pull_parser(tags)
        self.result = SoapResult()
        self.tail = b""  # the end of the previous chunk, for a declaration split across two
        self.unreleased = 0  # start tags fed since the last slice in which a record ended

    def fail(self, reason: str) -> ProtocolError:
        return ProtocolError(
            self.vendor, f"response is not acceptable XML: {reason}", method=self.method, status=self.status
        )

    def feed(self, chunk: bytes) -> None:
        for i in range(0, len(chunk), _SLICE):
            piece = chunk[i : i + _SLICE]
            self._screen(piece)
            self.parser.feed(piece)
            if self._drain():
                self.unreleased = 0
            else:
                self.unreleased += piece.count(b"<") - piece.count(b"</")
                if self.unreleased > MAX_RECORD_ELEMENTS:
                    raise self.fail(_TOO_MANY)

    def close(self) -> None:
        self.parser.close()
        self._drain()

    def _screen(self, chunk: bytes) -> None:
        """Refuse any DTD or entity declaration before the parser sees it."""
        window = self.tail + chunk
        if any(f in window for f in _FORBIDDEN):
            raise self.fail("a DTD or entity declaration is present (refused)")
        self.tail = window[-_OVERLAP:]

    def _drain(self) -> bool:
        """Handle what ended in the bytes fed so far; whether a record was among it."""
        released = False
        for _event, el in self.parser.read_events():
            tag = el.tag  # type: ignore[union-attr]  # "end" events of elements only (tag filter)
            if tag == self.fault_tag:
                self.result.fault = _fault_of(el)  # type: ignore[arg-type]
            elif _local(tag) == self.result_tag:
                self._take_scalars(el)  # type: ignore[arg-type]
            else:
                self.result.records.append(self.on_record(el))  # type: ignore[arg-type]
                _release(el)  # type: ignore[arg-type]
                released = True
        return released

    def _take_scalars(self, el: etree._Element) -> None:
        self.result.saw_result = True
        for child in el:
            if len(child) == 0 and isinstance(child.tag, str):
                self.result.scalars[_local(child.tag)] = text_of(child)


def _fault_of(el: etree._Element) -> Fault:
    detail = el.find("detail")
    exc_type = detail.findtext("ExceptionType") if detail is not None else None
    return Fault(
        (el.findtext("faultcode") or "").strip(),
        (el.findtext("faultstring") or "").strip()[:300],
        exc_type.strip() if exc_type else None,
    )


def _release(el: etree._Element) -> None:
    """Free a processed record and the already-processed siblings before it."""
    el.clear()
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "…"
