"""WORKBOX externalKeys, derived deterministically (same input → same key, on any machine).

A source id that already fits ``[A-Za-z0-9._-]{1,36}`` is used as it is.  Any other id, and every job
grade/position name, is mapped to ``<prefix><slug>-<hash>``: the slug keeps the id's ASCII letters,
digits, ``.``, ``_`` and ``-`` (others become ``-``), cut to fit, and the hash is the first 10 hex
digits of SHA-256 over the UTF-8 of the original id, so two ids that slug alike still differ.
"""

from __future__ import annotations

import functools
import hashlib
import re

KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,36}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_KEY = 36
_HASH_LEN = 10


def fits(key: str) -> bool:
    return KEY_RE.fullmatch(key) is not None


def hashed_key(text: str, prefix: str = "") -> str:
    """``prefix`` + readable slug + ``-`` + 10 hex digits of SHA-256(text)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LEN]
    room = MAX_KEY - len(prefix) - _HASH_LEN - 1
    slug = _UNSAFE.sub("-", text).strip("-.")[:room].rstrip("-.")
    return f"{prefix}{slug}-{digest}" if slug else f"{prefix}{digest}"


def source_key(source_id: str) -> str:
    """Key of a member or department: the source id itself when it fits, else mapped."""
    return source_id if fits(source_id) else hashed_key(source_id, "k-")


@functools.lru_cache(maxsize=4096)  # a few dozen names, asked once a member (100k times a cycle)
def grade_key(name: str) -> str:
    return hashed_key(name, "g-")


@functools.lru_cache(maxsize=4096)
def position_key(name: str) -> str:
    return hashed_key(name, "p-")


def whosoff_only_key(user_id: str) -> str:
    return source_key(f"wo-{user_id}")
