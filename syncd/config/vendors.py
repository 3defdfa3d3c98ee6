"""The vendor sections: what every vendor shares (transport, retries, limits) and each one's own keys.

Every wire detail that may differ at a customer belongs here, with today's contract as the default.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from syncd.config.section import Section, parse_interval

DEFAULT_WORKBOX_URL = "https://workbox.apigw.ntruss.com/workbox/workbox/openapi/v1"


class VendorSettings(Section):
    """Transport settings every vendor section shares."""

    url: str
    #: seconds for one request (connect + read)
    timeout: float = Field(30.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)
    max_concurrency: int = Field(4, ge=1, le=256)
    requests_per_second: float = Field(20.0, gt=0)
    #: attempts for a transient failure, the first included
    retry_attempts: int = Field(5, ge=1, le=50)
    #: overall seconds a call may spend retrying
    retry_deadline: float = Field(120.0, gt=0)
    retry_backoff_initial: float = Field(0.5, ge=0)
    retry_backoff_max: float = Field(30.0, ge=0)
    #: largest response body accepted, bytes (after decompression)
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        authority = re.match(r"^https?://([^/?#]*)", v)
        if authority and authority.group(1).rpartition("@")[2].endswith(":"):
            raise ValueError("has ':' but no port after it")
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018  (raises ValueError for a port that is not 0-65535)
        except ValueError:
            raise ValueError("port must be a number from 0 to 65535") from None
        if not parts.hostname:
            raise ValueError("has no host name")
        return v.rstrip("/")


class InfinityHRMethods(Section):
    """``[infinityhr.methods]``: the SOAP method names, by role (docs/vendor-contract.md §2.2a)."""

    section_name = "infinityhr.methods"
    authenticate: str = Field("Authenticate", min_length=1)
    employees: str = Field("GetEmployeesAll", min_length=1)
    #: called only with ``departments_from = "method"``
    departments: str = Field("GetDepartments", min_length=1)
    #: the employees changed in a date range (``[infinityhr.date_range]``), read between full reads
    #: (``sync.full_every``); paged like ``employees``
    employees_changed: str = Field("GetEmployeesByDateRange", min_length=1)


class InfinityHRDateRange(Section):
    """``[infinityhr.date_range]``: how ``methods.employees_changed`` is asked for a date range."""

    section_name = "infinityhr.date_range"
    #: the elements after ``<request>`` that carry the range's start and end
    begin: str = Field("BeginDate", min_length=1)
    end: str = Field("EndDate", min_length=1)
    #: strftime format of both, in UTC (the default is xs:dateTime)
    format: str = Field("%Y-%m-%dT%H:%M:%SZ", min_length=1)
    #: the range starts this long before the last trusted read began, and ends this long after now:
    #: clock differences and records saved while a read ran are read again rather than missed
    overlap: str = "15m"

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, v: str) -> str:
        seconds = parse_interval(v)
        if seconds is None:
            raise ValueError('must be an interval like "15m"')
        return v

    def overlap_seconds(self) -> float:
        value = parse_interval(self.overlap)
        assert value is not None  # validated
        return value


class InfinityHRFields(Section):
    """``[infinityhr.fields]``: syncd's name of each EmployeeInfo field it reads → the vendor's element
    name.  Nothing else of a record is read (SSN and PersonalEmail never are)."""

    section_name = "infinityhr.fields"
    employee_id: str = "EmployeeID"
    payroll_employee_id: str = "PayrollEmployeeID"
    first_name: str = "FirstName"
    middle_name: str = "MiddleName"
    last_name: str = "LastName"
    preferred_name: str = "PreferredName"
    work_email: str = "WorkEmail"
    work_phone: str = "WorkPhone"
    mobile_phone: str = "MobilePhone"
    department_code: str = "DepartmentCode"
    job_title: str = "JobTitle"
    job_grade: str = "JobGrade"
    supervisor_employee_id: str = "SupervisorEmployeeID"
    employment_status: str = "EmploymentStatus"
    hire_date: str = "HireDate"
    termination_date: str = "TerminationDate"
    last_modified: str = "LastModified"
    #: read when ``departments_from = "employees"``: the department tree is built from the records
    department_name: str = "DepartmentName"
    parent_department_code: str = "ParentDepartmentCode"

    @model_validator(mode="after")
    def _distinct(self) -> InfinityHRFields:
        seen: dict[str, str] = {}
        for name, element in self.model_dump().items():
            if not element:
                raise ValueError(f"{name} must name an element")
            if element in seen:
                raise ValueError(f"{name} and {seen[element]} both name the element {element!r}")
            seen[element] = name
        return self


class InfinityHRStatusValues(Section):
    """``[infinityhr.status_values]``: the vendor's EmploymentStatus values for each of syncd's three
    (an unmapped value is quarantined, never read as "not a member")."""

    section_name = "infinityhr.status_values"
    active: list[str] = Field(default_factory=lambda: ["Active"])
    leave: list[str] = Field(default_factory=lambda: ["Leave"])
    terminated: list[str] = Field(default_factory=lambda: ["Terminated"])

    @model_validator(mode="after")
    def _disjoint(self) -> InfinityHRStatusValues:
        seen: dict[str, str] = {}
        for name, values in (("active", self.active), ("leave", self.leave), ("terminated", self.terminated)):
            for value in values:
                if value in seen:
                    raise ValueError(f"{value!r} is listed under both {seen[value]} and {name}")
                seen[value] = name
        return self

    def canonical(self) -> dict[str, str]:
        """Vendor value → ``Active`` / ``Leave`` / ``Terminated``."""
        out = {v: "Active" for v in self.active}
        out.update({v: "Leave" for v in self.leave})
        out.update({v: "Terminated" for v in self.terminated})
        return out


class InfinityHRSettings(VendorSettings):
    section_name = "infinityhr"
    file_keys = ("vendor_password",)
    vendor_id: str = Field(min_length=1)
    vendor_password: SecretStr
    company_id: str | None = None
    page_size: int = Field(500, ge=1, le=1000)
    #: pages requested ahead of the one being read (0: one request at a time): the service builds
    #: them while syncd parses the page before
    prefetch_pages: int = Field(1, ge=0, le=8)
    #: the service's idle timeout; the session is renewed ``session_renew_margin`` before it
    session_idle_timeout: float = Field(1200.0, gt=0)
    session_renew_margin: float = Field(120.0, ge=0)
    #: the body namespace (the WSDL's targetNamespace)
    namespace: str = Field("http://www.infinityhr.com/webservices/", min_length=1)
    #: the SOAPAction header (quoted on the wire): ``{namespace}`` and ``{method}`` are filled in
    soap_action: str = "{namespace}{method}"
    #: where ``syncd doctor`` reads the WSDL (default: ``url`` + ``?WSDL``)
    wsdl_url: str | None = None
    #: ``method``: a departments method; ``employees``: the tree is built from the employee records
    departments_from: Literal["method", "employees"] = "method"
    methods: InfinityHRMethods = Field(default_factory=InfinityHRMethods)
    date_range: InfinityHRDateRange = Field(default_factory=InfinityHRDateRange)
    fields: InfinityHRFields = Field(default_factory=InfinityHRFields)
    status_values: InfinityHRStatusValues = Field(default_factory=InfinityHRStatusValues)

    @field_validator("soap_action")
    @classmethod
    def _action_template(cls, v: str) -> str:
        try:
            v.format(namespace="n", method="m")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"unknown field in soap_action ({exc}); use {{namespace}} and {{method}}"
            ) from None
        return v

    def action(self, method: str) -> str:
        """The SOAPAction of ``method``, unquoted."""
        return self.soap_action.format(namespace=self.namespace, method=method)


class WhosOffSettings(VendorSettings):
    section_name = "whosoff"
    file_keys = ("client_secret", "password")
    app_id: str = Field(min_length=1)
    client_secret: SecretStr
    username: str = Field(min_length=1)
    password: SecretStr
    ip_address: str = Field(min_length=1)
    #: the version segment between ``url`` and the routes (empty when ``url`` already ends with it)
    api_path: str = "v4"
    #: which key of a user holds its e-mail: the documented create field, the authentication
    #: response's name, or ``auto`` (the first present, per record)
    email_field: Literal["auto", "email_contact", "email_address"] = "auto"
    #: renew the token at this fraction of its lifetime
    token_renew_fraction: float = Field(0.8, gt=0, lt=1)
    #: seconds subtracted from the vendor's expiry for clock differences
    clock_skew_margin: float = Field(30.0, ge=0)
    #: how often WhosOff is read (an interval like "1h"); unset: with InfinityHR's full reads
    #: (``sync.full_every``)
    read_every: str | None = None

    @field_validator("read_every")
    @classmethod
    def _read_every(cls, v: str | None) -> str | None:
        if v is not None and parse_interval(v) is None:
            raise ValueError('must be an interval like "1h" (or left out: read with the full reads)')
        return v

    @field_validator("ip_address")
    @classmethod
    def _ipv4(cls, v: str) -> str:
        try:
            ipaddress.IPv4Address(v.strip())
        except ValueError:
            raise ValueError(
                "must be an IPv4 address (WhosOff accepts IPv4 only), like 203.0.113.7"
            ) from None
        return v.strip()

    @field_validator("api_path")
    @classmethod
    def _segment(cls, v: str) -> str:
        return v.strip().strip("/")

    @model_validator(mode="after")
    def _version_once(self) -> WhosOffSettings:
        if self.api_path and self.url.rstrip("/").endswith("/" + self.api_path):
            raise ValueError(
                f'url already ends with /{self.api_path}: set api_path = "" (or give the root URL without it)'
            )
        return self

    @property
    def api_root(self) -> str:
        """The URL the routes (``/authenticate/…``, ``/user/retrieve``) are appended to."""
        return self.url.rstrip("/") + (f"/{self.api_path}" if self.api_path else "")


#: the optional member fields WORKBOX documents that syncd does not set itself (contract §3.2)
MEMBER_OPTIONAL_FIELDS = {"localeTypeCd": 20, "tmznTypeCd": 50}


class WorkboxSettings(VendorSettings):
    section_name = "workbox"
    file_keys = ("api_key", "secret_key")
    url: str = DEFAULT_WORKBOX_URL
    company_id: str = Field(min_length=1, max_length=36)
    api_key: SecretStr
    access_key: str = Field(min_length=1)
    secret_key: SecretStr
    #: ``auto``: start with the variant found to work before (else v1); the first request the gateway
    #: refuses as unauthenticated is tried once with the other, and the one that works is kept
    signature: Literal["v1", "v2", "auto"] = "v1"
    #: optional member fields sent with every member when set (``localeTypeCd``, ``tmznTypeCd``);
    #: changing one updates every member at the next sync
    member_defaults: dict[str, str] = Field(default_factory=dict)
    #: a regular expression matched (case-insensitively) against the ``resultMessage`` of an E902 answer
    #: to a member: a match means "this e-mail address is taken by another member" (unmapped in
    #: WORKBOX; the wording is not published: docs/vendor-contract.md §3.3)
    email_taken: str = r"already (used|in use|taken|exists)|duplicat|이미 사용|중복"
    max_concurrency: int = Field(16, ge=1, le=256)
    requests_per_second: float = Field(50.0, gt=0)

    @field_validator("email_taken")
    @classmethod
    def _pattern(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from None
        return v

    @field_validator("member_defaults")
    @classmethod
    def _member_fields(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if key not in MEMBER_OPTIONAL_FIELDS:
                known = ", ".join(MEMBER_OPTIONAL_FIELDS)
                raise ValueError(f"{key} is not an optional member field syncd leaves to you ({known})")
            if not value or len(value) > MEMBER_OPTIONAL_FIELDS[key]:
                raise ValueError(f"{key} must be 1 to {MEMBER_OPTIONAL_FIELDS[key]} characters")
        return v


#: each vendor section's secrets (``syncd runs`` and the like load the configuration without them)
VENDOR_SECRETS: dict[str, tuple[str, ...]] = {
    cls.section_name: cls.file_keys for cls in (InfinityHRSettings, WhosOffSettings, WorkboxSettings)
}
