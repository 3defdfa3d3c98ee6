"""WORKBOX externalKey derivation (``syncd.engine.keys``): fixed vectors and properties.

The vectors are written out literally so that a change of the mapping (which would re-key every
department and grade in WORKBOX, i.e. delete + create them) cannot pass unnoticed.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from syncd.engine import keys

#: the contract's externalKey rule, written independently of ``keys.KEY_RE`` (and matched in full)
CONTRACT_KEY = re.compile(r"[A-Za-z0-9._-]{1,36}")


def contract_ok(key: str) -> bool:
    return CONTRACT_KEY.fullmatch(key) is not None


# ------------------------------------------------------------------------------------------ vectors

FIXED_VECTORS = [
    # (function, input, expected key)
    (keys.source_key, "E-1.2_3", "E-1.2_3"),
    (keys.source_key, "EMP 0042", "k-EMP-0042-cd041f8065"),
    (keys.source_key, "emp/0042", "k-emp-0042-9a6912d9d6"),
    (keys.source_key, "부장", "k-01b3143b55"),
    (keys.source_key, "a" * 37, "k-aaaaaaaaaaaaaaaaaaaaaaa-21ec055b38"),
    (keys.source_key, "", "k-e3b0c44298"),
    (keys.grade_key, "부장", "g-01b3143b55"),
    (keys.grade_key, "Senior Manager", "g-Senior-Manager-e59c67b794"),
    (keys.grade_key, "과장 (Manager)", "g-Manager-de0d0f8dbb"),
    (keys.grade_key, "x" * 80, "g-xxxxxxxxxxxxxxxxxxxxxxx-d929cdeea7"),
    (keys.position_key, "부장", "p-01b3143b55"),
    (keys.position_key, "Senior Manager", "p-Senior-Manager-e59c67b794"),
    (keys.whosoff_only_key, "42", "wo-42"),
    (keys.whosoff_only_key, "4 2", "k-wo-4-2-8e29d2a0b3"),
]


@pytest.mark.parametrize(("fn", "text", "expected"), FIXED_VECTORS)
def test_fixed_vectors(fn, text, expected):
    assert fn(text) == expected
    assert contract_ok(expected)


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("부장", "g-"),
        ("Senior Manager", "p-"),
        ("EMP 0042", "k-"),
        ("과장 (Manager)", "g-"),
        ("x" * 80, "g-"),
    ],
)
def test_documented_format(text, prefix):
    """``<prefix><slug>-<first 10 hex of SHA-256(utf-8)>``, slug = ASCII-safe part of the text."""
    key = keys.hashed_key(text, prefix)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    assert key.startswith(prefix)
    assert key.endswith(digest)
    slug = key[len(prefix) : -len(digest)].rstrip("-")
    assert re.fullmatch(r"[A-Za-z0-9._-]*", slug)
    assert not slug.startswith(("-", ".")) and not slug.endswith(("-", "."))
    assert len(key) <= 36


@pytest.mark.parametrize("source_id", ["E1", "0001", "a.b_c-d", "A" * 36, "-", "x.y"])
def test_fitting_ids_are_used_unchanged(source_id):
    assert keys.source_key(source_id) == source_id


@pytest.mark.parametrize(
    "source_id",
    [
        "A" * 37,
        "EMP 1",
        "emp/1",
        "kim@corp",
        "사원",
        "부서-개발팀",
        "ÉQUIPE",
        "a\tb",
        " E1",
        "E1 ",
        "",
        "\u200b",
    ],
)
def test_non_fitting_ids_are_mapped_into_the_contract(source_id):
    key = keys.source_key(source_id)
    assert key != source_id
    assert contract_ok(key), key
    assert key.startswith("k-")


@pytest.mark.parametrize(
    "name", ["부장", "과장", "대리", "사원", "차장", "상무이사", "대표이사", "팀장 (Team Lead)"]
)
def test_hangul_grade_names_map_into_the_contract(name):
    for fn in (keys.grade_key, keys.position_key):
        assert contract_ok(fn(name))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Senior Manager", "Senior/Manager"),
        ("Senior Manager", "Senior  Manager"),
        ("부장", "과장"),  # both slug to nothing
        ("x" * 80, "x" * 81),  # both cut to the same slug
        ("a.b", "a.b."),
    ],
)
def test_names_that_slug_alike_still_differ(a, b):
    assert keys.grade_key(a) != keys.grade_key(b)
    assert keys.position_key(a) != keys.position_key(b)


def test_grade_and_position_of_the_same_name_differ():
    assert keys.grade_key("Manager") != keys.position_key("Manager")


@pytest.mark.parametrize("source_id", ["E1\n", "dept.7\n"])
def test_trailing_newline_id_is_not_taken_as_it_is(source_id):
    assert contract_ok(keys.source_key(source_id))


# --------------------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_every_source_key_fits_the_contract(text):
    assume(not text.endswith("\n"))  # see test_trailing_newline_id_is_not_taken_as_it_is
    key = keys.source_key(text)
    assert contract_ok(key)
    assert key == keys.source_key(text)
    if contract_ok(text):
        assert key == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=150))
def test_every_grade_and_position_key_fits_the_contract(text):
    for fn in (keys.grade_key, keys.position_key):
        key = fn(text)
        assert contract_ok(key)
        assert key.endswith(hashlib.sha256(text.encode("utf-8")).hexdigest()[:10])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_distinct_names_give_distinct_grade_keys(a, b):
    assume(a != b)
    assert keys.grade_key(a) != keys.grade_key(b)
