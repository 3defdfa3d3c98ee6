"""syncd/vendors stays readable: every module at most ~400 lines, every function at most ~80."""

from __future__ import annotations

import ast
from pathlib import Path

import syncd.vendors

MODULE_LINES = 400
FUNCTION_LINES = 80
VENDORS = Path(syncd.vendors.__file__).parent


def test_modules_and_functions_stay_small() -> None:
    too_long: list[str] = []
    for path in sorted(VENDORS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MODULE_LINES:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES:
                    too_long.append(f"{path.name}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long
