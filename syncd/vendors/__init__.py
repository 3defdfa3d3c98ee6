"""Vendor clients: InfinityHR (SOAP), WhosOff (REST) and WORKBOX (signed REST).

Each client is given an ``aiohttp.ClientSession`` (owned by the caller) and its settings section, and
turns wire formats into the typed models below.  A record that cannot become its model is returned as
an :class:`InvalidRecord`; a response that is not the contract raises
:class:`~syncd.errors.ProtocolError`.
"""

from syncd.vendors.common import InvalidRecord
from syncd.vendors.infinityhr import (
    Department,
    Employee,
    EmployeePage,
    InfinityHRAuth,
    InfinityHRClient,
)
from syncd.vendors.whosoff import WhosOffAuth, WhosOffClient
from syncd.vendors.whosoff_models import WhosOffDepartment, WhosOffUser
from syncd.vendors.workbox import Kind, WorkboxClient, sign_v1, sign_v2

__all__ = [
    "Department",
    "Employee",
    "EmployeePage",
    "InfinityHRAuth",
    "InfinityHRClient",
    "InvalidRecord",
    "Kind",
    "WhosOffAuth",
    "WhosOffClient",
    "WhosOffDepartment",
    "WhosOffUser",
    "WorkboxClient",
    "sign_v1",
    "sign_v2",
]
