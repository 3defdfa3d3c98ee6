"""The sandbox company: a deterministic generator of HR and WhosOff data.

Everything derives from one ``random.Random(seed)``; iteration is over lists and insertion-ordered
dicts only, so the same ``(employees, seed, overlap, whosoff_only)`` always yields identical data.
Mutations (hire, transfer, ...) live in :mod:`syncd.sandbox.mutations`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

# A fixed generation instant: generated data never depends on the wall clock.
GENERATED_AT = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
EMAIL_DOMAIN = "acme.example"

# (display, ascii) pairs: accents and Hangul in the display form, ASCII for e-mail addresses.
FIRST_NAMES: tuple[tuple[str, str], ...] = (
    ("James", "james"),
    ("Mary", "mary"),
    ("John", "john"),
    ("Linda", "linda"),
    ("Robert", "robert"),
    ("Emma", "emma"),
    ("Oliver", "oliver"),
    ("Sophia", "sophia"),
    ("Liam", "liam"),
    ("Ava", "ava"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("François", "francois"),
    ("Björn", "bjorn"),
    ("Renée", "renee"),
    ("Søren", "soren"),
    ("Chloé", "chloe"),
    ("Łukasz", "lukasz"),
    ("Ana", "ana"),
    ("Noah", "noah"),
    ("민준", "minjun"),
    ("서연", "seoyeon"),
    ("지우", "jiwoo"),
    ("도윤", "doyun"),
    ("하은", "haeun"),
    ("예준", "yejun"),
    ("수아", "sua"),
    ("시우", "siwoo"),
    ("지호", "jiho"),
    ("유나", "yuna"),
)
LAST_NAMES: tuple[tuple[str, str], ...] = (
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Brown", "brown"),
    ("Taylor", "taylor"),
    ("Wilson", "wilson"),
    ("García", "garcia"),
    ("Müller", "muller"),
    ("O'Brien", "obrien"),
    ("Núñez", "nunez"),
    ("Dubois", "dubois"),
    ("Kowalczyk", "kowalczyk"),
    ("Andersson", "andersson"),
    ("김", "kim"),
    ("이", "lee"),
    ("박", "park"),
    ("최", "choi"),
    ("정", "jung"),
    ("강", "kang"),
    ("조", "cho"),
    ("윤", "yoon"),
)
MIDDLE_NAMES = ("A.", "Marie", "J.", "Lee", "Ann")
JOB_TITLES = (
    "Software Engineer",
    "Senior Software Engineer",
    "Product Manager",
    "Accountant",
    "HR Partner",
    "Sales Representative",
    "Support Specialist",
    "Designer",
    "Data Analyst",
    "Team Lead",
    "팀장",
    "매니저",
    "선임 연구원",
    "Directeur Général",
    "Ingénieure Qualité",
)
JOB_GRADES = ("사원", "주임", "대리", "과장", "차장", "부장", "이사", "L1", "L2", "L3")
DEPT_AREAS = ("Seoul", "Busan", "London", "Paris", "Berlin", "Austin", "Tokyo", "Pangyo")
DEPT_FUNCTIONS = (
    "Sales",
    "Engineering",
    "Finance",
    "People",
    "Marketing",
    "Support",
    "Legal",
    "Operations",
    "인사팀",
    "개발팀",
    "영업팀",
    "재무팀",
    "Qualité",
)
WHOSOFF_USER_TYPES = (300, 300, 300, 300, 200, 100)
MAX_DEPTH = 6


@dataclass(slots=True)
class Department:
    code: str
    name: str
    parent_code: str | None
    is_active: bool = True


@dataclass(slots=True)
class Employee:
    employee_id: str
    payroll_id: str
    ssn: str
    first_name: str
    middle_name: str | None
    last_name: str
    preferred_name: str | None
    work_email: str
    personal_email: str
    work_phone: str | None
    mobile_phone: str | None
    department_code: str
    job_title: str
    job_grade: str
    supervisor_id: str | None
    status: str  # Active | Leave | Terminated
    hire_date: date
    termination_date: date | None
    last_modified: datetime


@dataclass(slots=True)
class WhosOffUser:
    user_id: int
    staff_code: str | None
    title: str | None
    first_name: str
    middle_name: str | None
    last_name: str
    email_contact: str
    department_id: int
    user_type_id: int
    status_id: int  # 0 disabled, 1 active
    employment_started_date: date | None
    employment_ended_date: date | None
    work_telephone: str | None
    mobile_telephone: str | None
    active_directory_username: str | None
    employee_id: str | None = None  # sandbox-only: which HR employee this user belongs to (never served)

    def to_json(self, email_field: str = "email_contact") -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "staff_code": self.staff_code,
            "title": self.title,
            "first_name": self.first_name,
            "middle_name": self.middle_name,
            "last_name": self.last_name,
            email_field: self.email_contact,
            "department_id": self.department_id,
            "user_type_id": self.user_type_id,
            "status_id": self.status_id,
            "employment_started_date": _iso_date(self.employment_started_date),
            "employment_ended_date": _iso_date(self.employment_ended_date),
            "work_telephone": self.work_telephone,
            "mobile_telephone": self.mobile_telephone,
            "active_directory_username": self.active_directory_username,
        }


@dataclass(slots=True)
class WhosOffDepartment:
    department_id: int
    name: str
    min_user: int
    hr_code: str | None = None  # sandbox-only link to the HR department it mirrors (never served)

    def to_json(self) -> dict[str, object]:
        return {"department_id": self.department_id, "name": self.name, "min_user": self.min_user}


@dataclass(slots=True)
class EmployeeChange:
    seq: int
    employee_id: str
    change_type: str  # Add | Change | Delete
    change_date: datetime
    employee: Employee | None  # a snapshot taken at change time; None for Delete


@dataclass
class Company:
    """The sandbox's mutable world. Dict insertion order is the vendors' natural order."""

    departments: dict[str, Department] = field(default_factory=dict)
    employees: dict[str, Employee] = field(default_factory=dict)  # EmployeeID order
    whosoff_users: dict[int, WhosOffUser] = field(default_factory=dict)
    whosoff_departments: dict[int, WhosOffDepartment] = field(default_factory=dict)
    changes: list[EmployeeChange] = field(default_factory=list)
    job_titles: tuple[str, ...] = JOB_TITLES
    job_grades: tuple[str, ...] = JOB_GRADES
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # for mutations
    next_employee: int = 1
    next_payroll: int = 100001
    next_department: int = 1
    next_whosoff_user: int = 1001
    emails: set[str] = field(default_factory=set)  # lower-cased work e-mails in use
    whosoff_by_hr: dict[str, int] = field(default_factory=dict)
    email_counters: dict[str, int] = field(default_factory=dict)
    _employee_list: list[Employee] | None = None

    def employee_list(self) -> list[Employee]:
        """Employees ordered by EmployeeID (cached until the next mutation)."""
        if self._employee_list is None:
            self._employee_list = sorted(self.employees.values(), key=lambda e: e.employee_id)
        return self._employee_list

    def invalidate(self) -> None:
        self._employee_list = None

    def whosoff_department_for(self, hr_code: str) -> int:
        """The WhosOff department mirroring an HR department (the first one if none does)."""
        for code in self.hr_chain(hr_code):
            dep_id = self.whosoff_by_hr.get(code)
            if dep_id is not None:
                return dep_id
        return next(iter(self.whosoff_departments))

    def hr_chain(self, code: str | None) -> list[str]:
        chain: list[str] = []
        while code is not None and code in self.departments and len(chain) < 64:
            chain.append(code)
            code = self.departments[code].parent_code
        return chain

    def add_whosoff_department(self, name: str, min_user: int, hr_code: str | None) -> WhosOffDepartment:
        dep_id = max(self.whosoff_departments, default=0) + 1
        dep = WhosOffDepartment(dep_id, name[:50], min_user, hr_code)
        self.whosoff_departments[dep_id] = dep
        if hr_code is not None:
            self.whosoff_by_hr[hr_code] = dep_id
        return dep

    def new_employee_id(self) -> str:
        eid = f"E{self.next_employee:06d}"
        self.next_employee += 1
        return eid

    def new_payroll_id(self) -> str:
        pid = str(self.next_payroll)
        self.next_payroll += 1
        return pid

    def new_department_code(self) -> str:
        code = f"D{self.next_department:04d}"
        self.next_department += 1
        return code

    def unique_email(self, first: str, last: str, rng: random.Random, *, upper: bool = False) -> str:
        local = f"{first}.{last}"
        n = self.email_counters.get(local, 1)
        candidate = local if n == 1 else f"{local}{n}"
        while f"{candidate}@{EMAIL_DOMAIN}" in self.emails:
            n += 1
            candidate = f"{local}{n}"
        self.email_counters[local] = n + 1
        email = f"{candidate}@{EMAIL_DOMAIN}"
        self.emails.add(email)
        if upper:
            return f"{candidate.title()}@{EMAIL_DOMAIN.upper()}" if rng.random() < 0.5 else email.upper()
        return email


def _iso_date(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def phone(rng: random.Random, mobile: bool) -> str:
    if mobile:
        return f"+82-10-{rng.randrange(1000, 10000)}-{rng.randrange(1000, 10000)}"
    return f"+82-2-{rng.randrange(100, 1000)}-{rng.randrange(1000, 10000)}"


def ssn(rng: random.Random) -> str:
    return f"{rng.randrange(100, 900):03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"


def _generate_departments(company: Company, count: int, rng: random.Random) -> list[str]:
    """A random tree at most MAX_DEPTH deep; returns the codes of active departments."""
    depth: dict[str, int] = {}
    eligible: list[str] = []
    roots = max(1, min(5, count // 10 or 1))
    for i in range(count):
        code = company.new_department_code()
        area = DEPT_AREAS[rng.randrange(len(DEPT_AREAS))]
        function = DEPT_FUNCTIONS[rng.randrange(len(DEPT_FUNCTIONS))]
        name = f"{area} {function} {i + 1}"
        parent = None if i < roots else eligible[rng.randrange(len(eligible))]
        depth[code] = 1 if parent is None else depth[parent] + 1
        company.departments[code] = Department(code, name, parent)
        if depth[code] < MAX_DEPTH:
            eligible.append(code)
    parents = {d.parent_code for d in company.departments.values()}
    leaves = [c for c in company.departments if c not in parents]
    if len(leaves) > 2:  # about 5% of the leaf departments (at least one) are inactive
        for code in rng.sample(leaves, max(1, len(leaves) // 20)):
            company.departments[code].is_active = False
    for dep in company.departments.values():
        company.add_whosoff_department(dep.name, rng.randrange(0, 3), dep.code)
    return [c for c, d in company.departments.items() if d.is_active]


def make_employee(
    company: Company,
    rng: random.Random,
    dept_code: str,
    supervisor: str | None,
    hire_date: date,
    modified: datetime,
) -> Employee:
    first, first_ascii = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
    last, last_ascii = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
    r = rng.random()
    eid = company.new_employee_id()
    return Employee(
        employee_id=eid,
        payroll_id=company.new_payroll_id(),
        ssn=ssn(rng),
        first_name=first,
        middle_name=MIDDLE_NAMES[rng.randrange(len(MIDDLE_NAMES))] if r < 0.1 else None,
        last_name=last,
        preferred_name=first_ascii.capitalize() if 0.1 <= r < 0.15 else None,
        work_email=company.unique_email(first_ascii, last_ascii, rng, upper=rng.random() < 0.04),
        personal_email=f"{first_ascii}{rng.randrange(10, 10000)}@mail.example",
        work_phone=phone(rng, False) if rng.random() < 0.85 else None,
        mobile_phone=phone(rng, True) if rng.random() < 0.7 else None,
        department_code=dept_code,
        job_title=company.job_titles[rng.randrange(len(company.job_titles))],
        job_grade=company.job_grades[rng.randrange(len(company.job_grades))],
        supervisor_id=supervisor,
        status="Active",
        hire_date=hire_date,
        termination_date=None,
        last_modified=modified,
    )


def make_whosoff_user(company: Company, emp: Employee, rng: random.Random, *, by_email: bool) -> WhosOffUser:
    uid = company.next_whosoff_user
    company.next_whosoff_user += 1
    staff_code: str | None = emp.payroll_id
    email = emp.work_email
    if by_email:
        # Linked by e-mail only: no staff code or a stale one; e-mail case may differ from HR.
        staff_code = None if rng.random() < 0.5 else f"OLD-{rng.randrange(1000, 10000)}"
        email = email.lower() if rng.random() < 0.5 else email
    terminated = emp.status == "Terminated"
    return WhosOffUser(
        user_id=uid,
        staff_code=staff_code,
        title=None,
        first_name=emp.first_name,
        middle_name=emp.middle_name,
        last_name=emp.last_name,
        email_contact=email,
        department_id=company.whosoff_department_for(emp.department_code),
        user_type_id=WHOSOFF_USER_TYPES[rng.randrange(len(WHOSOFF_USER_TYPES))],
        status_id=0 if terminated or rng.random() < 0.01 else 1,
        employment_started_date=emp.hire_date,
        employment_ended_date=emp.termination_date,
        work_telephone=emp.work_phone,
        mobile_telephone=emp.mobile_phone,
        active_directory_username=email.split("@")[0].lower() if rng.random() < 0.5 else None,
        employee_id=emp.employee_id,
    )


def generate_company(
    employees: int = 500, seed: int = 1, overlap: float = 0.8, whosoff_only: int = 5
) -> Company:
    """Build a deterministic company of ``employees`` people (about employees/50 departments)."""
    rng = random.Random(seed)
    company = Company(rng=random.Random(seed * 7919 + 1))
    active_depts = _generate_departments(company, max(3, employees // 50), rng)
    managers: dict[str, str] = {}
    base_day = GENERATED_AT.date()
    for _ in range(employees):
        dept = active_depts[rng.randrange(len(active_depts))]
        hire = base_day - timedelta(days=rng.randrange(30, 365 * 15))
        modified = GENERATED_AT - timedelta(seconds=rng.randrange(0, 86400 * 365))
        modified = modified.replace(microsecond=0)
        parent = company.departments[dept].parent_code
        supervisor = managers.get(dept) or (managers.get(parent) if parent else None)
        emp = make_employee(company, rng, dept, supervisor, hire, modified)
        managers.setdefault(dept, emp.employee_id)
        r = rng.random()
        if r < 0.04:
            emp.status = "Leave"
        elif r < 0.10:
            emp.status = "Terminated"
            emp.termination_date = hire + timedelta(days=rng.randrange(1, max(2, (base_day - hire).days)))
        company.employees[emp.employee_id] = emp
    for emp in company.employees.values():
        if rng.random() < overlap:
            user = make_whosoff_user(company, emp, rng, by_email=rng.random() < 0.15)
            company.whosoff_users[user.user_id] = user
    dept_ids = list(company.whosoff_departments)
    for i in range(whosoff_only):
        first, first_ascii = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last, last_ascii = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        uid = company.next_whosoff_user
        company.next_whosoff_user += 1
        company.whosoff_users[uid] = WhosOffUser(
            user_id=uid,
            staff_code=None if i % 2 else f"CONTRACT-{i + 1:03d}",
            title="Contractor",
            first_name=first,
            middle_name=None,
            last_name=last,
            email_contact=f"{first_ascii}.{last_ascii}.contractor{i + 1}@partner.example",
            department_id=dept_ids[rng.randrange(len(dept_ids))],
            user_type_id=300,
            status_id=0 if i % 4 == 3 else 1,
            employment_started_date=None,
            employment_ended_date=None,
            work_telephone=None,
            mobile_telephone=None,
            active_directory_username=None,
        )
    return company
