"""The property tests' own tools must be able to fail: the memory check sees an allocation a claim would cause,
and the hostile documents come out as the JSON text they stand for."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from tests.hostile import REFUSED, allocation_peak, as_json_bytes, decoded

pytestmark = pytest.mark.same_on_every_backend  # pure: the test tools alone


def test_the_memory_check_sees_a_buffer_allocated_for_a_claimed_size() -> None:
    claimed = 8 * 1024 * 1024
    assert allocation_peak(lambda: bytearray(claimed), ()) >= claimed
    assert allocation_peak(lambda: bytes(100), ()) < 64 * 1024


def test_the_memory_check_counts_a_refused_call_and_lets_other_errors_through() -> None:
    def refuse_after_allocating() -> None:
        buffer = bytearray(4 * 1024 * 1024)
        raise ValueError(len(buffer))
    assert allocation_peak(refuse_after_allocating, (ValueError,)) >= 4 * 1024 * 1024
    with pytest.raises(KeyError):
        allocation_peak(lambda: {}["missing"], (ValueError,))
    assert not tracemalloc.is_tracing(), "an error that escapes must not leave every later test traced"


def test_stand_ins_are_written_as_deep_nesting_and_long_numbers() -> None:
    text = as_json_bytes({"a": "\x00deep:3:[", "b": "\x00deep:2:{", "n": "\x00digits:5"})
    assert json.loads(text) == {"a": [[[]]], "b": {"a": {"a": None}}, "n": 99999}
    assert decoded(["\x00deep:5000:["]) is REFUSED and decoded(["\x00digits:5000"]) is REFUSED
    assert as_json_bytes(["\ud800"], ascii_only=False) == b'["\xed\xa0\x80"]'  # invalid UTF-8, as sent
