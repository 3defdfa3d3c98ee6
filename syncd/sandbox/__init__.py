"""Protocol-faithful simulators of InfinityHR, WhosOff and WORKBOX (see ``docs/vendor-contract.md``).

Imports nothing from the rest of syncd: it re-implements the vendors' side from the contract, so a
client bug cannot be mirrored here.
"""

from .app import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions, run_sandbox, syncd_config_for
from .data import Company, generate_company
from .faults import Faults
from .mutations import MutationError
from .reqlog import RequestLog
from .workbox_store import WorkboxState

__all__ = [
    "SANDBOX_CREDENTIALS",
    "Company",
    "Faults",
    "MutationError",
    "RequestLog",
    "Sandbox",
    "SandboxOptions",
    "WorkboxState",
    "generate_company",
    "run_sandbox",
    "syncd_config_for",
]
