"""Targets and table rows of the whole-process figures (:mod:`bench.process`), beside the stage ones."""

from __future__ import annotations

from typing import Any

from bench.worker import CONCURRENCY, LATENCY_MS

HEAD = ["sandbox loop", "scenario", "page", "wall s", "CPU s", "run s", "peak RSS MB", "notes"]

#: issue 18's whole-process targets
NOOP_RATIO = 1.5
VERSION_S = 0.3
RSS_MB = 400
CHANGED_RATIO = 0.3
APPLY_BOUND, APPLY_BARE = 0.85, 0.95


def _target(name: str, met: bool | None, figure: str, limit: str) -> dict[str, Any]:
    return {"target": name, "met": met, "figure": figure, "limit": limit}


def raw_seconds(part: dict[str, Any]) -> float:
    base = part["baseline"]
    return float(base["fetch_parse_s"] + base["insert_s"])


def targets(leg: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    n, db = leg["employees"], leg["db"]
    for part in leg.get("process", []):
        tag = f"N={n:,} {db}, whole process, sandbox on {part['loop']}"
        sc = part["scenarios"]
        raw = raw_seconds(part)
        noop = sc.get("noop")
        for name in ("noop", "noop-page-1000"):
            s = sc.get(name)
            if s:
                ratio = s["wall_s"] / raw
                out.append(_target(
                    f"{tag}: no-op `syncd --run-once` ≤ {NOOP_RATIO} × raw (pages of {s['page_size']}; "
                    "the raw baseline reads pages of 500)",
                    ratio <= NOOP_RATIO,
                    f"{s['wall_s']:.2f} s wall, {s['cpu_s']:.2f} s CPU = {ratio:.2f} × raw {raw:.2f} s",
                    f"≤ {NOOP_RATIO:.2f} ×",
                ))  # fmt: skip
        inc = sc.get("noop-incremental")
        if inc and noop:
            share = inc["wall_s"] / noop["wall_s"]
            out.append(_target(
                f"{tag}: no-change incremental cycle as a fraction of a full no-op (figure only)", None,
                f"{inc['wall_s']:.2f} s wall, {inc['cpu_s']:.2f} s CPU = {share:.2f} × "
                f"the full no-op's {noop['wall_s']:.2f} s", "printed",
            ))  # fmt: skip
        init, ch = sc.get("initial"), sc.get("changed")
        if init and init.get("applied") and init.get("apply_s"):
            rate = init["applied"] / init["apply_s"]
            bound = 1000 / LATENCY_MS * CONCURRENCY
            bare = part["baseline"].get("push_ops_per_s") or 0.0
            out.append(_target(
                f"{tag}: initial sync's apply window ≥ {APPLY_BOUND:.0%} of the latency bound and ≥ "
                f"{APPLY_BARE:.0%} of a bare client measured in the same run",
                rate >= APPLY_BOUND * bound and bool(bare) and rate >= APPLY_BARE * bare,
                f"{init['applied']:,} operations in {init['apply_s']:.1f} s = {rate:.0f} ops/s: "
                f"{rate / bound:.2f} of the bound {bound:.0f} ops/s, "
                + (f"{rate / bare:.2f} of the bare client's {bare:.0f} ops/s" if bare else "no bare client"),
                f"≥ {APPLY_BOUND:.2f} / ≥ {APPLY_BARE:.2f}",
            ))  # fmt: skip
        expected = part.get("mutation", {}).get("expected_total")
        if ch and expected is not None and noop:
            share = noop["workbox_requests"]  # a no-op sends its re-assertion share and nothing else
            out.append(_target(
                f"{tag}: 1% changed WORKBOX requests == minimal operations + re-assertion share",
                ch["workbox_requests"] == expected + share,
                f"{ch['workbox_requests']} requests; expected {expected} + {share}", "== expected",
            ))  # fmt: skip
        if init and ch:
            ratio = ch["wall_s"] / init["wall_s"]
            out.append(_target(
                f"{tag}: 1% changed ≤ {CHANGED_RATIO} × initial",
                ratio <= CHANGED_RATIO,
                f"{ch['wall_s']:.2f} s = {ratio:.3f} × {init['wall_s']:.1f} s",
                f"≤ {CHANGED_RATIO:.2f} ×",
            ))  # fmt: skip
        out.append(_target(
            f"{tag}: `syncd --version`", part["version_s"] <= VERSION_S,
            f"{part['version_s']:.3f} s (best of 5)", f"≤ {VERSION_S} s",
        ))  # fmt: skip
        if n >= 100_000 and sc:
            peak = max(s["peak_rss_mb"] for s in sc.values())
            out.append(_target(f"{tag}: peak RSS", peak <= RSS_MB, f"{peak:.0f} MB", f"≤ {RSS_MB} MB"))
    return out


def growth(small: dict[str, Any], large: dict[str, Any], db: str) -> list[dict[str, Any]]:
    """Whole-process cost growth from the smallest to the largest size, per scenario (≤ 1.1 × the
    size ratio), for the sandbox loops both legs measured."""
    out: list[dict[str, Any]] = []
    lo, hi = small["employees"], large["employees"]
    limit = hi / lo * 1.1
    parts = {p["loop"]: p for p in small.get("process", [])}
    for part in large.get("process", []):
        other = parts.get(part["loop"])
        for name, s in part["scenarios"].items() if other else ():
            if name in other["scenarios"]:
                g = s["wall_s"] / other["scenarios"][name]["wall_s"]
                out.append(_target(
                    f"{db}, whole process, sandbox on {part['loop']}: {name} cost growth {lo:,} → {hi:,}",
                    g <= limit, f"{g:.1f} ×", f"≤ {limit:.0f} ×",
                ))  # fmt: skip
    return out


def rows(leg: dict[str, Any]) -> list[list[str]]:
    out: list[list[str]] = []
    for part in leg.get("process", []):
        for name, s in part["scenarios"].items():
            run_s = s.get("run_s")
            note = f"WORKBOX requests {s['workbox_requests']}; {s.get('result') or 'exit ' + str(s['exit'])}"
            if run_s is not None:
                note += f"; start-up + shutdown {s['wall_s'] - run_s:.2f} s"
            out.append([
                part["loop"], name, str(s["page_size"]), f"{s['wall_s']:.2f}", f"{s['cpu_s']:.2f}",
                f"{run_s:.2f}" if run_s is not None else "-", f"{s['peak_rss_mb']:.0f}", note,
            ])  # fmt: skip
        base = part["baseline"]
        out.append([
            part["loop"], "raw baseline", "500", f"{raw_seconds(part):.2f}", "", "", "",
            f"fetch+parse {base['fetch_parse_s']:.2f} s + insert {base['insert_s']:.2f} s, "
            f"{base['rows']:,} rows",
        ])  # fmt: skip
        out.append([part["loop"], "syncd --version", "", f"{part['version_s']:.3f}", "", "", "", "best of 5"])
    return out
