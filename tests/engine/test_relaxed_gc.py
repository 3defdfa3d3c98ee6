"""The cycle's relaxed cyclic-GC thresholds are in force only while a cycle runs."""

from __future__ import annotations

import gc

import pytest

from syncd.engine.gc_tuning import CYCLE_GC_THRESHOLD, relaxed_gc


def test_thresholds_are_raised_during_the_cycle_and_restored_after() -> None:
    before = gc.get_threshold()
    assert before != CYCLE_GC_THRESHOLD
    with relaxed_gc():
        assert gc.get_threshold() == CYCLE_GC_THRESHOLD
    assert gc.get_threshold() == before


def test_thresholds_are_restored_when_the_cycle_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), relaxed_gc():
        raise RuntimeError("cycle failed")
    assert gc.get_threshold() == before
