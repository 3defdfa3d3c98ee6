"""Desired directory vs. ledger → ordered operations with dependencies.  Pure.

Order rules (WORKBOX enforces referential integrity and has no read API):
grades/positions and parent departments are created before what references them; a department is
moved under a parent only after that parent exists or has moved; members are moved out of (or
deleted from) a department before it is deleted; child departments go before their parents; a grade
or position is deleted only after no member references it; an e-mail address is freed before another
member takes it.  Operations are grouped into levels (every dependency in an earlier level) and, within
a level, sorted by kind, action and key, so the same inputs always give the same plan.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Body = dict[str, Any]
KIND_RANK = {"job-grade": 0, "job-position": 1, "dept": 2, "user": 3}
ACTION_RANK = {"create": 0, "update": 1, "delete": 2}
USER_REFS = (
    ("deptExternalKey", "dept"),
    ("gradeExternalKey", "job-grade"),
    ("positionExternalKey", "job-position"),
)


@dataclass
class Op:
    kind: str
    key: str
    action: str
    body: Body | None
    #: the ledger's body before the operation (None for a create); shows what changes
    before: Body | None = None
    depends_on: list[int] = field(default_factory=list)
    seq: int = 0
    level: int = 0

    def changes(self) -> dict[str, tuple[Any, Any]]:
        old, new = self.before or {}, self.body or {}
        return {k: (old.get(k), new.get(k)) for k in sorted({*old, *new}) if old.get(k) != new.get(k)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "level": self.level,
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "body": self.body,
            "depends_on": self.depends_on,
        }


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def body_hash(body: Mapping[str, Any] | None) -> str:
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def ledger_hash(ledger: Mapping[tuple[str, str], Body]) -> str:
    return ledger_digest((kind, key, body_hash(body)) for (kind, key), body in ledger.items())


def ledger_digest(entries: Iterable[tuple[str, str, str]]) -> str:
    """SHA-256 over (kind, key, body hash) of every ledger entry: from the stored ``body_hash``
    column, without re-serialising any body."""
    digest = hashlib.sha256()
    for kind, key, hashed in sorted(entries):
        digest.update(f"{kind}\0{key}\0{hashed}\n".encode())
    return digest.hexdigest()


def plan_hash(ops: list[Op]) -> str:
    """What the operations do (kind, key, action, body), not how they are numbered: the same held
    deletes planned beside other operations, or alone, hash alike."""
    lines = sorted(canonical([op.kind, op.key, op.action, op.body]) for op in ops)
    # fed line by line: the joined text and its bytes were two more copies of every body at once
    # (an initial sync of 100k: ~70 MB for an instant, the whole run's peak RSS)
    digest = hashlib.sha256()
    for i, line in enumerate(lines):
        digest.update(line.encode() if i == 0 else b"\n" + line.encode())
    return digest.hexdigest()


def make_plan(desired: Mapping[str, Mapping[str, Body]], ledger: Mapping[tuple[str, str], Body]) -> list[Op]:
    ops: dict[tuple[str, str], Op] = {}
    for kind, objects in desired.items():
        for key, body in objects.items():
            old = ledger.get((kind, key))
            # bodies are shared, not copied (at 100k that is a second copy of the directory): neither
            # the plan nor its callers mutate them
            if old is None:
                ops[(kind, key)] = Op(kind, key, "create", body)
            elif old != body:  # plain JSON values: dict equality is exact
                ops[(kind, key)] = Op(kind, key, "update", body, before=old)
    for (kind, key), old in ledger.items():
        if key not in desired.get(kind, {}):
            ops[(kind, key)] = Op(kind, key, "delete", None, before=old)
    deps, email_deps = _dependencies(ops, ledger)
    _break_email_rotations(ops, deps, email_deps, ledger)
    return _order(ops, deps)


OpId = tuple[str, str]


def _dependencies(
    ops: Mapping[OpId, Op], ledger: Mapping[OpId, Body]
) -> tuple[dict[OpId, set[OpId]], dict[OpId, OpId]]:
    """Dependencies of every operation, and separately the "e-mail freed first" edges."""
    deps: dict[OpId, set[OpId]] = defaultdict(set)
    email_deps: dict[OpId, OpId] = {}

    def needs(op_id: tuple[str, str], ref: tuple[str, str], actions: tuple[str, ...]) -> None:
        other = ops.get(ref)
        if other is not None and other.action in actions and ref != op_id:
            deps[op_id].add(ref)

    # who references what, in the ledger (for deletes) — built once
    ledger_refs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    email_holder: dict[str, tuple[str, str]] = {}
    for (kind, key), body in ledger.items():
        if kind == "user":
            for field_name, ref_kind in USER_REFS:
                if body.get(field_name):
                    ledger_refs[(ref_kind, body[field_name])].append((kind, key))
            if body.get("emailAddr"):
                email_holder[str(body["emailAddr"]).lower()] = (kind, key)
        elif kind == "dept" and body.get("uprDeptExternalKey", "#") != "#":
            ledger_refs[("dept", body["uprDeptExternalKey"])].append((kind, key))
    ledger_parent = {
        key: body.get("uprDeptExternalKey", "#") for (kind, key), body in ledger.items() if kind == "dept"
    }

    for op_id, op in ops.items():
        if op.action == "delete":
            # everything that references it in WORKBOX must move away or go first
            for referrer in ledger_refs.get(op_id, ()):
                needs(op_id, referrer, ("update", "delete"))
            continue
        body = op.body or {}
        if op.kind == "dept":
            # every department on its desired ancestor chain is created or moved first: then, when this
            # one moves, its new parent's ancestry is the desired one, which cannot contain it (no
            # transient cycle), and every parent exists
            for ancestor in _desired_ancestors(op.key, ops, ledger_parent):
                needs(op_id, ("dept", ancestor), ("create", "update"))
        elif op.kind == "user":
            for field_name, ref_kind in USER_REFS:
                if body.get(field_name):
                    needs(op_id, (ref_kind, body[field_name]), ("create",))
            email = str(body.get("emailAddr", "")).lower()
            holder = email_holder.get(email)
            if holder and holder != op_id and holder in ops and ops[holder].action in ("update", "delete"):
                deps[op_id].add(holder)
                email_deps[op_id] = holder
    return deps, email_deps


def _desired_ancestors(key: str, ops: Mapping[OpId, Op], ledger_parent: Mapping[str, str]) -> list[str]:
    """Departments above ``key`` once the plan is applied (bounded against malformed input)."""

    def parent(k: str) -> str:
        op = ops.get(("dept", k))
        if op is not None and op.action != "delete":
            return str((op.body or {}).get("uprDeptExternalKey", "#"))
        return ledger_parent.get(k, "#")

    out: list[str] = []
    node = parent(key)
    while node != "#" and node not in out and node != key:
        out.append(node)
        node = parent(node)
    return out


def swap_address(key: str) -> str:
    """The temporary address a member holds while members rotate e-mail addresses."""
    return f"syncd-swap-{key.lower()}@swap.invalid"


def _break_email_rotations(
    ops: dict[OpId, Op],
    deps: dict[OpId, set[OpId]],
    email_deps: dict[OpId, OpId],
    ledger: Mapping[OpId, Body],
) -> None:
    """Members taking each other's addresses in a ring can never apply one after the other: the first
    member of each ring moves to a temporary address first, which frees its address for the next."""
    done: set[OpId] = set()
    for start in sorted(email_deps):
        path: list[OpId] = []
        node: OpId | None = start
        while node is not None and node not in done and node not in path:
            path.append(node)
            node = email_deps.get(node)
        done.update(path)
        if node is None or node not in path:
            continue
        ring = path[path.index(node) :]
        first = min(ring)
        temp_id = ("user", f"{first[1]}\x00swap")
        before = dict(ledger[first])
        ops[temp_id] = Op(
            "user", first[1], "update", {**before, "emailAddr": swap_address(first[1])}, before=before
        )
        deps[first].add(temp_id)
        for member in ring:
            if email_deps.get(member) == first:
                deps[member].discard(first)
                deps[member].add(temp_id)


def _order(
    ops: Mapping[tuple[str, str], Op], deps: Mapping[tuple[str, str], set[tuple[str, str]]]
) -> list[Op]:
    level: dict[tuple[str, str], int] = {}
    visiting: set[tuple[str, str]] = set()

    def depth(op_id: tuple[str, str]) -> int:
        if op_id in level:
            return level[op_id]
        visiting.add(op_id)
        below = [depth(d) for d in deps.get(op_id, ()) if d not in visiting]
        visiting.discard(op_id)
        level[op_id] = 1 + max(below) if below else 0
        return level[op_id]

    for op_id in sorted(ops):
        depth(op_id)
    ordered = sorted(ops, key=lambda i: (level[i], KIND_RANK[i[0]], ACTION_RANK[ops[i].action], i[1]))
    seq = {op_id: n for n, op_id in enumerate(ordered, start=1)}
    result = []
    for op_id in ordered:
        op = ops[op_id]
        op.seq, op.level = seq[op_id], level[op_id]
        op.depends_on = sorted(seq[d] for d in deps.get(op_id, ()) if level[d] < level[op_id])
        result.append(op)
    return result


def summarize(ops: list[Op]) -> dict[str, dict[str, int]]:
    counts: Counter[tuple[str, str]] = Counter((op.kind, op.action) for op in ops)
    out: dict[str, dict[str, int]] = {}
    for (kind, action), n in sorted(counts.items()):
        out.setdefault(kind, {})[action] = n
    return out
