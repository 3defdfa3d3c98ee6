"""What the simulated InfinityHR writes: an EmployeeInfo record in a dialect's names, an xs:dateTime,
and its WSDL (the parts a client reads to check its configuration)."""

from __future__ import annotations

from datetime import UTC, datetime

from lxml import etree

from .data import Company, Employee
from .dialect import InfinityHRDialect

IHR_NS = "http://www.infinityhr.com/webservices/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NIL = f"{{{XSI_NS}}}nil"
_Q = "{" + IHR_NS + "}"


def xs_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def add_value(parent: etree._Element, name: str, value: str | None, q: str = _Q) -> None:
    el = etree.SubElement(parent, q + name)
    if value is None:
        el.set(NIL, "true")
    else:
        el.text = value


_STATUS_ROLE = {"Active": "active", "Leave": "leave", "Terminated": "terminated"}


def employee_xml(
    parent: etree._Element,
    emp: Employee,
    tag: str = "EmployeeInfo",
    *,
    dialect: InfinityHRDialect | None = None,
    company: Company | None = None,
) -> None:
    """One EmployeeInfo in ``dialect``'s element names and status values; with no departments
    method, the department's name and parent code ride on the record (``company`` gives them)."""
    d = dialect or InfinityHRDialect()
    q = "{" + d.namespace + "}"
    el = etree.SubElement(parent, q + tag)
    values: list[tuple[str, str | None]] = [
        ("employee_id", emp.employee_id),
        ("payroll_employee_id", emp.payroll_id),
        ("ssn", emp.ssn),
        ("first_name", emp.first_name),
        ("middle_name", emp.middle_name),
        ("last_name", emp.last_name),
        ("preferred_name", emp.preferred_name),
        ("work_email", emp.work_email),
        ("personal_email", emp.personal_email),
        ("work_phone", emp.work_phone),
        ("mobile_phone", emp.mobile_phone),
        ("department_code", emp.department_code),
        ("job_title", emp.job_title),
        ("job_grade", emp.job_grade),
        ("supervisor_employee_id", emp.supervisor_id),
        ("employment_status", d.status_values.get(_STATUS_ROLE.get(emp.status, ""), emp.status)),
        ("hire_date", emp.hire_date.isoformat()),
        ("termination_date", emp.termination_date.isoformat() if emp.termination_date else None),
        ("last_modified", xs_datetime(emp.last_modified)),
    ]
    if not d.departments_method and company is not None:
        dept = company.departments.get(emp.department_code)
        values.append(("department_name", dept.name if dept else None))
        values.append(("parent_department_code", dept.parent_code if dept else None))
    for name, value in values:
        add_value(el, d.fields[name], value, q)


def wsdl_document(dialect: InfinityHRDialect, methods: list[str]) -> bytes:
    """A WSDL 1.1 document for ``dialect``: targetNamespace, one operation per method with its
    soapAction (the parts a client reads to check its configuration; no schema of the types)."""
    w, soap = "http://schemas.xmlsoap.org/wsdl/", "http://schemas.xmlsoap.org/wsdl/soap/"
    tns = dialect.namespace
    root = etree.Element(f"{{{w}}}definitions", nsmap={"wsdl": w, "soap": soap, "tns": tns},
                         targetNamespace=tns)  # fmt: skip
    port_type = etree.SubElement(root, f"{{{w}}}portType", name="EmployeeServiceSoap")
    binding = etree.SubElement(
        root, f"{{{w}}}binding", name="EmployeeServiceSoap", type="tns:EmployeeServiceSoap"
    )
    etree.SubElement(binding, f"{{{soap}}}binding", transport="http://schemas.xmlsoap.org/soap/http")
    for method in methods:
        etree.SubElement(port_type, f"{{{w}}}operation", name=method)
        op = etree.SubElement(binding, f"{{{w}}}operation", name=method)
        etree.SubElement(op, f"{{{soap}}}operation", soapAction=dialect.action(method), style="document")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")
