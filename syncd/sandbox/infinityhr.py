"""InfinityHR SOAP 1.1 simulator: Authenticate, sessions, paged employee reads, faults, a WSDL.

Contract: docs/vendor-contract.md §2.  It speaks the contract's dialect unless given another
(:class:`~.dialect.InfinityHRDialect`: namespace, SOAPAction form, method and element names, status
values, no departments method); ``GET …?WSDL`` describes whichever it speaks.

Requests are parsed with defusedxml (DTDs and entities are refused with an ``ArgumentException``
fault); responses are built with lxml. A wrong Content-Type answers HTTP 415 (as ASMX does); a
SOAPAction that is missing, unquoted or does not name the body element is a ``soap:Client``
``ArgumentException`` fault.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET  # only for the parse error type and element annotations
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import defusedxml
import defusedxml.ElementTree as SafeET
from aiohttp import web
from lxml import etree

from .data import Company, EmployeeChange
from .dialect import InfinityHRDialect
from .faults import FaultInjector, send_truncated_gzip, vendor_middleware
from .infinityhr_xml import IHR_NS, NIL, XSI_NS, add_value, employee_xml, wsdl_document, xs_datetime
from .mutations import mutate
from .reqlog import RequestLog, set_code, set_op

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
VENDOR_ID = "sandbox-vendor"
VENDOR_PASSWORD = "sandbox-vendor-pass"  # noqa: S105 (sandbox-only credential)
INACTIVE_VENDOR_ID = "inactive-vendor"
INACTIVE_VENDOR_PASSWORD = "inactive-vendor-pass"  # noqa: S105
COMPANY_ID = "ACME"
XML_CT = "text/xml; charset=utf-8"
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">' for i in range(1, 10))
    + f']>\n<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><GetEmployeesAllResponse xmlns="{IHR_NS}">'
    "<GetEmployeesAllResult><TotalCount>&lol9;</TotalCount></GetEmployeesAllResult>"
    "</GetEmployeesAllResponse></soap:Body></soap:Envelope>"
)


class SoapFault(Exception):
    def __init__(self, exception_type: str | None, message: str, *, server: bool = False) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message
        self.server = server


@dataclass
class Session:
    vendor_id: str
    start: float
    last_used: float


def parse_xs_datetime(text: str) -> datetime:
    """xs:dateTime (Z, offset or none = UTC) or xs:date."""
    text = text.strip()
    try:
        if "T" not in text:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SoapFault("ArgumentException", f"Not an xs:dateTime: {text!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _text(parent: ET.Element, name: str, *, required: bool = False) -> str | None:
    el = parent.find("{*}" + name)  # the namespace was checked when the request was parsed
    if el is None or el.get(NIL) in ("true", "1") or el.text is None or not el.text.strip():
        if required:
            raise SoapFault("ArgumentException", f"Missing required element {name}")
        return None
    return el.text.strip()


def _int(parent: ET.Element, name: str, default: int, low: int, high: int) -> int:
    text = _text(parent, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise SoapFault("ArgumentException", f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise SoapFault("ArgumentException", f"{name} must be within {low}..{high}")
    return value


def _bool(parent: ET.Element, name: str) -> bool:
    text = _text(parent, name)
    if text is None:
        return True
    if text not in ("true", "false", "1", "0"):
        raise SoapFault("ArgumentException", f"{name} must be an xs:boolean")
    return text in ("true", "1")


class InfinityHRService:
    """Server side of InfinityHR. ``idle_timeout`` (seconds) and ``clock`` are mutable at run time."""

    def __init__(
        self,
        company: Company,
        log: RequestLog,
        injector: FaultInjector,
        idle_timeout: float = 1200.0,
        *,
        dialect: InfinityHRDialect | None = None,
    ) -> None:
        self.company = company
        self.dialect = d = dialect or InfinityHRDialect()
        self.ns = d.namespace
        self.q = "{" + d.namespace + "}"
        # detached containers carry the final namespaces, so lxml never has to invent ns0 prefixes
        self.nsmap = {None: d.namespace, "xsi": XSI_NS}
        #: method name → role (authenticate, employees, departments; changes keeps its contract name)
        self.roles = {
            name: role for role, name in d.methods.items() if role != "departments" or d.departments_method
        }
        self.roles.setdefault("GetEmployeeChanges", "changes")
        self.log = log
        self.injector = injector
        self.idle_timeout = idle_timeout
        #: unix time for sessions and their idle timer (a test may substitute a fake clock)
        self.clock: Callable[[], float] = time.time
        self.vendors: dict[str, tuple[str, bool]] = {
            VENDOR_ID: (VENDOR_PASSWORD, True),
            INACTIVE_VENDOR_ID: (INACTIVE_VENDOR_PASSWORD, False),
        }
        self.sessions: dict[str, Session] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[vendor_middleware(self.injector, self.log, self)])
        app.router.add_post("/EmployeeService.asmx", self.endpoint)
        app.router.add_get("/EmployeeService.asmx", self.wsdl)
        return app

    async def wsdl(self, request: web.Request) -> web.Response:
        """``GET …?WSDL``: the namespace, the operations and their SOAPActions of this dialect."""
        set_op(request, "WSDL")
        if "wsdl" not in {k.lower() for k in request.query}:  # a plain GET: only POST is a call
            set_code(request, "405")
            raise web.HTTPMethodNotAllowed("GET", ["POST"])
        return web.Response(body=wsdl_document(self.dialect, list(self.roles)), content_type="text/xml")

    def expire_sessions(self) -> int:
        count = len(self.sessions)
        self.sessions.clear()
        return count

    # ---- errors --------------------------------------------------------------------------------
    def fault(self, request: web.Request, fault: SoapFault) -> web.Response:
        set_code(request, fault.exception_type or "soap:Server")
        env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS, "xsi": XSI_NS, "xsd": XSD_NS})
        body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
        el = etree.SubElement(body, f"{{{SOAP_NS}}}Fault")
        etree.SubElement(el, "faultcode").text = "soap:Server" if fault.server else "soap:Client"
        etree.SubElement(el, "faultstring").text = fault.message
        if fault.exception_type is not None:
            detail = etree.SubElement(el, "detail")
            etree.SubElement(detail, "ExceptionType").text = fault.exception_type
        return web.Response(
            status=500,
            body=etree.tostring(env, xml_declaration=True, encoding="utf-8"),
            content_type="text/xml",
            charset="utf-8",
        )

    def injected_error(self, request: web.Request) -> web.StreamResponse:
        return self.fault(
            request, SoapFault(None, "Server was unable to process request (sandbox fault)", server=True)
        )

    def rate_limited(self, request: web.Request, retry_after: int) -> web.StreamResponse:
        set_code(request, "429")
        return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": str(retry_after)})

    # ---- request handling ---------------------------------------------------------------------
    def _parse(self, raw: bytes) -> ET.Element:
        try:
            root = SafeET.fromstring(raw, forbid_dtd=True)
        except (defusedxml.DefusedXmlException, ET.ParseError, ValueError) as exc:
            raise SoapFault("ArgumentException", f"Request is not acceptable XML: {exc}") from exc
        if root.tag != f"{{{SOAP_NS}}}Envelope":
            raise SoapFault("ArgumentException", "Root element must be a SOAP 1.1 Envelope")
        body = root.find(f"{{{SOAP_NS}}}Body")
        children = list(body) if body is not None else []
        if len(children) != 1:
            raise SoapFault("ArgumentException", "soap:Body must hold exactly one method element")
        method_el: ET.Element = children[0]
        if not method_el.tag.startswith(self.q) or method_el.tag[len(self.q) :] not in self.roles:
            raise SoapFault("ArgumentException", f"Unknown method element {method_el.tag}")
        for el in method_el.iter():
            if not el.tag.startswith(self.q):
                raise SoapFault("ArgumentException", f"Element {el.tag} is not in the {self.ns} namespace")
        return method_el

    async def endpoint(self, request: web.Request) -> web.StreamResponse:
        action = request.headers.get("SOAPAction")
        by_action = {self.dialect.action(name): name for name in self.roles}
        if action and action.strip('"') in by_action:
            set_op(request, by_action[action.strip('"')])
        if request.content_type != "text/xml" or request.charset not in (None, "utf-8", "UTF-8"):
            set_code(request, "415")
            return web.Response(status=415, text="Content-Type must be text/xml; charset=utf-8")
        try:
            method_el = self._parse(await request.read())
            method = method_el.tag[len(self.q) :]
            role = self.roles[method]
            set_op(request, method)
            if action != f'"{self.dialect.action(method)}"':
                raise SoapFault(
                    "ArgumentException",
                    f"Server did not recognize the value of HTTP Header SOAPAction: {action}",
                )
            req = method_el.find(self.q + "request")
            if req is None:
                raise SoapFault("ArgumentException", "Missing <request> element")
            if role == "authenticate":
                return self._xml(method, self._authenticate(req))
            session = self._session(req)
            company = _text(req, "CompanyID")
            if company is not None and company != COMPANY_ID:
                raise SoapFault("ArgumentException", f"Unknown CompanyID {company}")
            if role == "departments":
                result = self._departments()
            else:
                page = _int(req, "PageNumber", 1, 1, 2**31 - 1)
                size = _int(req, "PageSize", 500, 1, 1000)
                if role == "employees":
                    result = self._employees_all(page, size)
                elif role == "employees_changed":
                    result = self._employees_by_date_range(method_el, page, size)
                else:
                    result = self._employee_changes(method_el, page, size)
            session.last_used = self.clock()
            corrupt = self.injector.take_corrupt()
            if corrupt == "truncated_gzip":
                return await send_truncated_gzip(request, self._payload(method, result), XML_CT)
            return self._xml(method, result, corrupt=corrupt)
        except SoapFault as fault:
            return self.fault(request, fault)

    def _payload(self, method: str, result: list[etree._Element]) -> bytes:
        env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soap": SOAP_NS, "xsi": XSI_NS, "xsd": XSD_NS})
        body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
        resp = etree.SubElement(body, f"{self.q}{method}Response", nsmap={None: self.ns})  # type: ignore[dict-item]
        res = etree.SubElement(resp, f"{self.q}{method}Result")
        res.extend(result)
        return etree.tostring(env, xml_declaration=True, encoding="utf-8")

    def _xml(self, method: str, result: list[etree._Element], corrupt: str | None = None) -> web.Response:
        payload = self._payload(method, result)
        headers = {"Content-Type": XML_CT}
        if corrupt == "entity_expansion":
            payload = BILLION_LAUGHS.encode()
        elif corrupt == "malformed":
            payload = payload[: len(payload) // 2] + b"<broken"
        return web.Response(status=200, body=payload, headers=headers)

    def _authenticate(self, req: ET.Element) -> list[etree._Element]:
        vendor_id = _text(req, "VendorID", required=True) or ""
        password = _text(req, "VendorPwd", required=True)
        known = self.vendors.get(vendor_id)
        if known is None or known[0] != password:
            raise SoapFault("VendorNotFoundException", "Vendor not found or password incorrect")
        if not known[1]:
            raise SoapFault("VendorNotActiveException", "Vendor is not active")
        now = self.clock()
        sid = str(uuid.uuid4())
        self.sessions[sid] = Session(vendor_id, now, now)
        start = datetime.fromtimestamp(now, UTC)
        end = datetime.fromtimestamp(now + self.idle_timeout, UTC)
        out: list[etree._Element] = []
        for name, value in (
            ("SessionID", sid),
            ("IsVendorActive", "true"),
            ("SessionStart", xs_datetime(start)),
            ("SessionEnd", xs_datetime(end)),
            ("SyncDate", xs_datetime(start)),
        ):
            el = etree.Element(self.q + name)
            el.text = value
            out.append(el)
        return out

    def _session(self, req: ET.Element) -> Session:
        vendor_id = _text(req, "VendorID", required=True)
        sid = _text(req, "SessionID", required=True) or ""
        session = self.sessions.get(sid.lower())
        if session is not None and self.clock() - session.last_used > self.idle_timeout:
            del self.sessions[sid.lower()]
            session = None
        if session is None or session.vendor_id != vendor_id:
            raise SoapFault("InvalidSessionException", "Session is invalid or has expired")
        return session

    def _departments(self) -> list[etree._Element]:
        deps = etree.Element(self.q + "Departments", nsmap=self.nsmap)  # type: ignore[arg-type]
        for dep in self.company.departments.values():
            el = etree.SubElement(deps, self.q + "DepartmentInfo")
            add_value(el, "DepartmentCode", dep.code, self.q)
            add_value(el, "Name", dep.name, self.q)
            add_value(el, "ParentDepartmentCode", dep.parent_code, self.q)
            add_value(el, "IsActive", "true" if dep.is_active else "false", self.q)
        return [deps]

    def _paging(self, total: int, page: int, size: int) -> list[etree._Element]:
        out = []
        for name, value in (("TotalCount", total), ("PageNumber", page), ("PageSize", size)):
            el = etree.Element(self.q + name)
            el.text = str(value)
            out.append(el)
        return out

    def _employees_all(self, page: int, size: int) -> list[etree._Element]:
        employees = self.company.employee_list()
        start, stop, purge = self.injector.page_window(page, size)  # paging faults (faults.py)
        emps = etree.Element(self.q + "Employees", nsmap=self.nsmap)  # type: ignore[arg-type]
        for emp in employees[start:stop]:
            employee_xml(emps, emp, dialect=self.dialect, company=self.company)
        result = [*self._paging(len(employees), page, size), emps]
        if purge and employees:
            mutate(self.company, "delete", {"employee_id": employees[0].employee_id})
        return result

    def _employees_by_date_range(self, method_el: ET.Element, page: int, size: int) -> list[etree._Element]:
        """``GetEmployeesByDateRange``: the employees whose LastModified is in [BeginDate, EndDate],
        by EmployeeID, paged like GetEmployeesAll (an employee deleted meanwhile is simply absent)."""
        begin, end = _date_range(method_el)
        changed = [e for e in self.company.employee_list() if begin <= e.last_modified <= end]
        emps = etree.Element(self.q + "Employees", nsmap=self.nsmap)  # type: ignore[arg-type]
        for emp in changed[(page - 1) * size : page * size]:
            employee_xml(emps, emp, dialect=self.dialect, company=self.company)
        return [*self._paging(len(changed), page, size), emps]

    def _employee_changes(self, method_el: ET.Element, page: int, size: int) -> list[etree._Element]:
        begin, end = _date_range(method_el)
        kinds = {
            k
            for k, flag in (
                ("Add", _bool(method_el, "IncludeAdds")),
                ("Change", _bool(method_el, "IncludeChanges")),
                ("Delete", _bool(method_el, "IncludeDeletes")),
            )
            if flag
        }
        selected: list[EmployeeChange] = [
            c for c in self.company.changes if c.change_type in kinds and begin <= c.change_date <= end
        ]
        changes = etree.Element(self.q + "Changes", nsmap=self.nsmap)  # type: ignore[arg-type]
        for change in selected[(page - 1) * size : page * size]:
            el = etree.SubElement(changes, self.q + "EmployeeChange")
            add_value(el, "EmployeeID", change.employee_id, self.q)
            add_value(el, "ChangeType", change.change_type, self.q)
            add_value(el, "ChangeDate", xs_datetime(change.change_date), self.q)
            if change.employee is not None:
                employee_xml(el, change.employee, "Employee", dialect=self.dialect, company=self.company)
        return [*self._paging(len(selected), page, size), changes]


def _date_range(method_el: ET.Element) -> tuple[datetime, datetime]:
    begin_text = _text(method_el, "BeginDate", required=True) or ""
    end_text = _text(method_el, "EndDate")
    begin = parse_xs_datetime(begin_text)
    end = parse_xs_datetime(end_text) if end_text else datetime.now(UTC)
    if begin > end:
        raise SoapFault("ArgumentException", "BeginDate is after EndDate")
    return begin, end
