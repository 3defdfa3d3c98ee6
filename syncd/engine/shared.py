"""Values many records repeat (a department, a title, a status, every JSON key) kept once in memory,
not once a record: at 100k employees each copy is ~15 objects an entity (issue 18's memory).  Whole
tables read into memory are read in batches of :data:`LOAD_BATCH` rows for the same reason.

Equal values, same order: nothing downstream can tell the difference.
"""

from __future__ import annotations

import sys
from typing import Any

#: longer values (rare: free text) are left as they are
INTERN_MAX = 64
#: rows decoded at a time when a whole table is read into memory (the ledger, a staged snapshot)
LOAD_BATCH = 2000


def share(value: Any) -> Any:
    """``value``, interned when it is a short string."""
    return sys.intern(value) if type(value) is str and len(value) <= INTERN_MAX else value


def shared_strings(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (a row's JSON, decoded on its own) with its keys and short string values interned."""
    intern = sys.intern
    return {intern(k): intern(v) if type(v) is str and len(v) <= INTERN_MAX else v for k, v in body.items()}
