"""The reliability campaigns of issue 8, in one command, with a summary table.

    python -m bench.reliability [--db sqlite,postgres] [--crash-runs 50] [--fault-rounds 4]
                                [--campaigns crash,faults,hostile,deletion] [--seed N] [--pg-restart]
                                [--out docs/reliability.md]

* crash   — SIGKILL ``syncd --run-once`` at random points (time- and request-count-based), restart;
            converged / duplicates / lost / ledger mismatches (target N/0/0/0); on PostgreSQL also a
            PostgreSQL restart while a run applies (that run exits 1 cleanly, the next converges).
* faults  — 20% 5xx, 5% hangs, 429 bursts, 2 s WhosOff tokens, 2 s InfinityHR sessions, 6 min
            WORKBOX clock skew, several HR change rounds; cycles to converge after each round.
* deletion — issue 13's ways of deleting someone HR still wants (``tests/support/campaigns/deletion.py``):
            a 200-cycle salami drain, a stale approval, replay after 503 and of a forged journal, the
            clock set back and forward; WORKBOX deletes of wanted people (target 0, salami ≤ max_deletes).
* hostile — the hostile input corpus (``tests/support/campaigns/hostile.py``), every case's outcome asserted.
* leaks   — every campaign's logs and database dump scanned for secrets, tokens, session ids,
            signatures, SSNs and personal e-mails (zero hits is the target).

Exit status 0 when every target is met, 1 otherwise.  Needs PostgreSQL for the postgres leg
(``$SYNCD_TEST_POSTGRES_URL``) and, for the PostgreSQL restart, ``pg_ctlcluster`` (run as root).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.campaigns.common import table
from tests.support.pg import postgres_reason


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--campaigns", default="crash,faults,hostile,deletion", help="comma-separated subset")
    p.add_argument("--salami-cycles", type=int, default=200, help="cycles of the deletion campaign's drain")
    p.add_argument("--crash-runs", type=int, default=50)
    p.add_argument("--fault-rounds", type=int, default=4)
    p.add_argument("--employees", type=int, default=60, help="company size of the crash/fault campaigns")
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: derived from the time)")
    p.add_argument(
        "--pg-restart",
        action="store_true",
        help="also restart the host's PostgreSQL cluster (pg_ctlcluster … restart) during a run: only on a "
        "machine whose PostgreSQL nothing else uses",
    )
    p.add_argument("--no-pg-restart", action="store_true", help="(the default; kept for old command lines)")
    p.add_argument("--workdir", type=Path, default=None, help="keep logs and databases here")
    p.add_argument("--out", type=Path, default=None, help="write the summary into this Markdown file")
    return p.parse_args(argv)


async def _main(args: argparse.Namespace, command: str) -> int:
    from tests.support.campaigns.crash import crash_campaign
    from tests.support.campaigns.deletion import deletion_campaign
    from tests.support.campaigns.faults import fault_campaign
    from tests.support.campaigns.hostile import hostile_campaign

    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    print(f"seed {seed}  (rerun with --seed {seed})")
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    campaigns = {c.strip() for c in args.campaigns.split(",")}
    if "postgres" in dbs:
        reason = await postgres_reason()
        if reason:
            print(f"postgres leg skipped: {reason}")
            dbs.remove("postgres")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="syncd-reliability-"))
    print(f"logs and databases under {work}")
    rows: list[list[Any]] = []
    ok = True
    sections: list[str] = []
    for db in dbs:
        if "crash" in campaigns:
            r = await crash_campaign(
                db, work / db, runs=args.crash_runs, seed=seed, employees=args.employees,
                pg_restart=args.pg_restart and not args.no_pg_restart,
            )  # fmt: skip
            dup = len(r.duplicates)
            met = r.converged == len(r.runs) and dup == 0 and r.lost == 0 and r.ledger_mismatches == 0
            rows.append([
                db, "crash", f"{len(r.runs)} runs ({r.killed} killed: "
                + ", ".join(f"{k} {v}" for k, v in sorted(r.phases().items())) + ")",
                f"converged {r.converged}/{len(r.runs)}, duplicates {dup}, lost {r.lost}, "
                f"ledger mismatches {r.ledger_mismatches}",
                f"{len(r.runs)}/0/0/0", "met" if met else "NOT MET",
            ])  # fmt: skip
            ok &= met
            if r.pg_restart is not None:
                p = r.pg_restart
                met = (p.exit_code == 1 and not p.traceback and p.lost == 0 and p.mismatch == 0
                       and p.converged)  # fmt: skip
                rows.append([
                    db, "PostgreSQL restart mid-apply", "1 run",
                    f"exit {p.exit_code}, traceback {'yes' if p.traceback else 'no'}, lost {p.lost}, "
                    f"ledger mismatches {p.mismatch}; next run exit {p.next_exit}, converged {p.converged}",
                    "exit 1, no traceback, 0/0, next converges", "met" if met else "NOT MET",
                ])  # fmt: skip
                ok &= met
            rows.append(_leak_row(db, "crash", r.leak_hits, r.leak_values))
            ok &= not r.leak_hits
            if r.failures():
                sections.append(f"crash on {db}:\n" + "\n".join(f"- {f}" for f in r.failures()[:40]))
        if "faults" in campaigns:
            f = await fault_campaign(
                db, work / db, rounds=args.fault_rounds, seed=seed, employees=args.employees
            )
            met = f.all_exact and f.max_cycles <= 3
            rows.append([
                db, "faults", f"{len(f.rounds)} change rounds, {f.total_cycles} cycles, "
                f"{f.injected} injected faults",
                f"cycles to converge per round {f.cycles_list}; max {f.max_cycles}; final state exact: "
                f"{'yes' if f.all_exact else 'NO'}",
                "exact within 3 cycles", "met" if met else "NOT MET",
            ])  # fmt: skip
            ok &= met
            rows.append(_leak_row(db, "faults", f.leak_hits, f.leak_values))
            ok &= not f.leak_hits
        if "hostile" in campaigns:
            h = await hostile_campaign(db, work / db)
            print(h.table())
            met = h.passed == len(h.cases)
            rows.append([
                db, "hostile input", f"{len(h.cases)} cases", f"{h.passed}/{len(h.cases)} as expected",
                "all as expected", "met" if met else "NOT MET",
            ])  # fmt: skip
            ok &= met
            rows.append(_leak_row(db, "hostile", h.leak_hits, h.leak_values))
            ok &= not h.leak_hits
            sections.append(f"hostile input corpus on {db}:\n\n" + h.table())
        if "deletion" in campaigns:
            d = await deletion_campaign(db, work / db, seed=seed, salami_cycles=args.salami_cycles)
            for c in d.cases:
                status = "met" if c.met else "NOT MET"
                rows.append([db, f"deletion: {c.name}", c.size, c.result, c.target, status])
            ok &= d.all_met
    summary = table(["db", "campaign", "size", "result", "target", "status"], rows)
    print("\n" + summary)
    for s in sections:
        print("\n" + s)
    if args.out:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        _write_doc(args.out, stamp, command, seed, summary, sections)
        print(f"\nwritten to {args.out}")
    return 0 if ok else 1


def _leak_row(db: str, campaign: str, hits: list[tuple[str, str, str]], values: dict[str, int]) -> list[Any]:
    scanned = ", ".join(f"{n} {k}" for k, n in values.items())
    return [
        db,
        f"leak scan ({campaign})",
        scanned,
        f"{len(hits)} hits",
        "0 hits",
        "met" if not hits else "NOT MET",
    ]


def _write_doc(path: Path, stamp: str, command: str, seed: int, summary: str, sections: list[str]) -> None:
    marker = "<!-- reliability-summary -->"
    body = (
        f"{marker}\n## Latest results\n\n{stamp}, seed {seed}:\n\n```\n{command}\n```\n\n{summary}\n\n"
        + "\n\n".join(sections)
        + f"\n{marker}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else ""
    if text.count(marker) >= 2:
        head, _, rest = text.partition(marker)
        _, _, tail = rest.partition(marker)
        text = head + body.rstrip("\n") + tail
    else:
        text = text + ("\n" if text else "") + body
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    command = "python -m bench.reliability " + shlex.join(sys.argv[1:] if argv is None else argv)
    return asyncio.run(_main(args, command.strip()))


if __name__ == "__main__":
    sys.exit(main())
