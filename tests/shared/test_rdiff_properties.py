"""Properties of a delta request, which a friend's client sends the seeder: any request reads back as sent,
and any body is a request or a PatchError, its byte budget never more than its 8 bytes can say."""

from __future__ import annotations

from contextlib import suppress

import pytest
from hypothesis import given, strategies as st

from shared import rdiff
from shared.errors import PatchError
from tests.hostile import allocation_peak
from tests.shared.strategies import sha256_hex

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, values out


@given(sha256_hex, st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=300))
def test_a_delta_request_reads_back_as_sent(target: str, budget: int, signature: bytes) -> None:
    assert rdiff.decode_request(rdiff.encode_request(target, budget, signature)) == (target, budget, signature)


@given(st.binary(max_size=120))
def test_any_body_is_a_request_in_its_only_form_or_a_patch_error(body: bytes) -> None:
    with suppress(PatchError):
        target, budget, signature = rdiff.decode_request(body)
        assert 0 <= budget < 2**64 and rdiff.encode_request(target, budget, signature) == body
    assert allocation_peak(lambda: rdiff.decode_request(body), (PatchError,)) < 4 * len(body) + 64 * 1024
