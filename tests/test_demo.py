"""``syncd demo`` (the README's first command) says what it does, in numbers that add up."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

from rich.console import Console

from syncd.demo import run_demo
from syncd.sandbox import Sandbox, SandboxOptions


async def test_the_demo_explains_who_is_synced_and_who_is_not(tmp_path: Path) -> None:
    """Issue 14, item 10: the banner said "300 employees, 6 departments" and WORKBOX then held 281
    members and 5 departments, without a word on the 19 terminated and the inactive department."""
    company = Sandbox(SandboxOptions(employees=300, seed=7, port=0)).company  # the demo's company
    status = Counter(e.status for e in company.employees.values())
    inactive = sum(not d.is_active for d in company.departments.values())
    assert status["Terminated"] and inactive  # the seed has both: the test means something

    buffer = io.StringIO()
    code = await run_demo(employees=300, seed=7, directory=tmp_path, out=Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert code == 0, text
    assert (
        f"300 employees ({status['Active']} active, {status['Leave']} on leave, "
        f"{status['Terminated']} terminated), {len(company.departments)} departments ({inactive} inactive)"
    ) in text, text
    held = re.search(r"WORKBOX now holds: (\d+) dept, (\d+) user", text)
    assert held, text
    assert int(held.group(2)) == status["Active"] + status["Leave"]
    assert int(held.group(1)) == len(company.departments) - inactive
    assert "terminated employees and inactive departments are not synced" in text
    assert "WORKBOX requests in this sync: 6" in text
