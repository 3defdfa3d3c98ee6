"""Whether a running ``syncd sandbox``'s WORKBOX holds exactly the directory its HR data asks for.

    python -m deploy.check_exact --control http://127.0.0.1:8781/_sandbox --employees 60 --seed 3

The expected directory is computed as the tests compute it (:func:`tests.support.oracle.
expected_directory`) from the same generated company; exit 0 when equal, 1 with the differences.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

from syncd.sandbox.data import generate_company
from tests.support.oracle import expected_directory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.check_exact")
    ap.add_argument("--control", required=True, help="the sandbox's control URL (…/_sandbox)")
    ap.add_argument("--employees", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    args = ap.parse_args(argv)
    if not args.control.startswith("http://"):
        ap.error("--control must be an http:// URL")
    with urllib.request.urlopen(f"{args.control.rstrip('/')}/workbox/state", timeout=10) as r:  # noqa: S310
        state = json.load(r)
    have = {(kind, key): body for kind, objs in state.items() for key, body in objs.items()}
    want = expected_directory(generate_company(args.employees, args.seed))
    if have == want:
        print(f"WORKBOX exact: {len(have)} entities")  # noqa: T201
        return 0
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    changed = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    diff = f"missing {missing[:5]}, extra {extra[:5]}, changed {changed[:5]}"
    print(f"WORKBOX differs: {diff}", file=sys.stderr)  # noqa: T201
    return 1


if __name__ == "__main__":
    sys.exit(main())
