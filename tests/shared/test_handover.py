"""Key hand-overs: a client follows a signed chain from its pinned key to the tracker's current key, and nothing else."""

import hashlib
import json

import pytest

from shared.errors import KeyHandoverError
from shared.handover import MAX_CHAIN, Handover, chain_ends_at, follow, parse_chain, statement
from shared.signing import Signer, b64d, b64e, fingerprint, verify

T0 = 1_700_000_000


@pytest.fixture(scope="module")
def keys() -> list[Signer]:
    return [Signer.generate() for _ in range(4)]


def rotations(keys: list[Signer], t: int = T0) -> list[Handover]:
    """A → B → C → D, as three rotations by the tracker."""
    return [Handover.sign(old, new.public_key, t + i * 100) for i, (old, new) in enumerate(zip(keys, keys[1:]))]


def test_the_statement_is_canonical_json_of_kind_old_new_and_time(keys):
    a, b = keys[0].public_key, keys[1].public_key
    assert json.loads(statement(a, b, T0)) == {"kind": "mist-key-handover", "old": a, "new": b, "issued_at": T0}
    assert statement(a, b, T0) == statement(a, b, T0)
    h = Handover.sign(keys[0], b, T0)
    verify(a, statement(a, b, T0), h.signature)  # the old key's plain signature of those bytes


def test_one_hand_over_takes_a_client_from_the_old_key_to_the_new(keys):
    h = Handover.sign(keys[0], keys[1].public_key, T0)
    assert follow(keys[0].public_key, keys[1].public_key, [h]) == [h]


def test_a_client_pinned_to_the_first_key_follows_the_whole_chain(keys):
    chain = rotations(keys)
    assert follow(keys[0].public_key, keys[3].public_key, chain) == chain


def test_a_client_pinned_midway_follows_the_rest(keys):
    chain = rotations(keys)
    assert follow(keys[2].public_key, keys[3].public_key, chain) == chain[2:]


def test_the_order_the_tracker_lists_them_in_does_not_matter(keys):
    chain = rotations(keys)
    assert follow(keys[0].public_key, keys[3].public_key, list(reversed(chain))) == chain


def test_an_unchanged_key_needs_no_hand_over(keys):
    assert follow(keys[1].public_key, keys[1].public_key, []) == []


def test_a_new_key_with_no_hand_over_is_refused(keys):
    with pytest.raises(KeyHandoverError, match="no hand-over from the key you trusted"):
        follow(keys[0].public_key, Signer.generate().public_key, [])


def test_a_chain_that_does_not_start_at_the_pinned_key_is_refused(keys):
    chain = rotations(keys)[1:]  # B → C → D, shown to a client pinned to A
    with pytest.raises(KeyHandoverError, match=f"no hand-over from the key you trusted \\({fingerprint(keys[0].public_key)}\\)"):
        follow(keys[0].public_key, keys[3].public_key, chain)


def test_a_broken_link_is_refused(keys):
    chain = rotations(keys)
    del chain[1]  # A → B, then nothing from B
    with pytest.raises(KeyHandoverError, match=f"stop at {fingerprint(keys[1].public_key)}"):
        follow(keys[0].public_key, keys[3].public_key, chain)


def test_a_chain_that_leads_elsewhere_is_refused(keys):
    chain = rotations(keys)
    with pytest.raises(KeyHandoverError, match="stop at"):
        follow(keys[0].public_key, Signer.generate().public_key, chain)  # the tracker now shows a key nobody handed over to


def test_a_statement_signed_by_another_key_is_refused(keys):
    thief = Signer.generate()
    forged = Handover(keys[0].public_key, thief.public_key, T0, thief.sign(statement(keys[0].public_key, thief.public_key, T0)))
    with pytest.raises(KeyHandoverError, match="is not signed by"):
        follow(keys[0].public_key, thief.public_key, [forged])


def test_a_genuine_signature_over_other_words_is_refused(keys):
    genuine = Handover.sign(keys[0], keys[1].public_key, T0)
    thief = Signer.generate()
    swapped = Handover(genuine.old, thief.public_key, genuine.issued_at, genuine.signature)  # the same signature, a new key
    with pytest.raises(KeyHandoverError, match="is not signed by"):
        follow(keys[0].public_key, thief.public_key, [swapped])
    with pytest.raises(KeyHandoverError, match="is not signed by"):
        follow(keys[0].public_key, keys[1].public_key, [Handover(genuine.old, genuine.new, T0 + 1, genuine.signature)])


def test_a_ticket_or_manifest_signature_is_not_a_hand_over(keys):
    """The statement's `kind` means the old key's signature of other bytes never reads as a hand-over."""
    a, b = keys[0], keys[1].public_key
    other = json.dumps({"old": a.public_key, "new": b, "issued_at": T0}, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(KeyHandoverError):
        follow(a.public_key, b, [Handover(a.public_key, b, T0, a.sign(other))])


def test_a_loop_back_to_a_retired_key_is_refused(keys):
    a, b, c = keys[:3]
    chain = [Handover.sign(a, b.public_key, T0), Handover.sign(b, a.public_key, T0 + 1)]
    with pytest.raises(KeyHandoverError, match="come back"):
        follow(a.public_key, c.public_key, chain)  # would walk A → B → A → B … forever


def test_a_replayed_old_statement_cannot_take_a_client_back(keys):
    chain = rotations(keys)
    # Pinned to D (the newest); a tracker showing B again with every genuine statement: nothing leads from D.
    with pytest.raises(KeyHandoverError, match="no hand-over from the key you trusted"):
        follow(keys[3].public_key, keys[1].public_key, chain)


def test_a_hand_over_older_than_the_one_before_it_is_refused(keys):
    a, b, c = keys[:3]
    chain = [Handover.sign(a, b.public_key, T0 + 100), Handover.sign(b, c.public_key, T0)]
    with pytest.raises(KeyHandoverError, match="older than the one before"):
        follow(a.public_key, c.public_key, chain)


def test_two_different_hand_overs_from_one_key_are_refused(keys):
    a, b, c = keys[:3]
    chain = [Handover.sign(a, b.public_key, T0), Handover.sign(a, c.public_key, T0 + 1)]
    with pytest.raises(KeyHandoverError, match="two different hand-overs"):
        follow(a.public_key, b.public_key, chain)


def test_json_round_trips_and_parsing_is_strict(keys):
    chain = rotations(keys)
    assert parse_chain(json.loads(json.dumps([h.to_json() for h in chain]))) == chain
    good = chain[0].to_json()
    bad = [
        "not a dict",
        {k: v for k, v in good.items() if k != "signature"},
        {**good, "extra": 1},
        {**good, "issued_at": "1700000000"},
        {**good, "issued_at": True},
        {**good, "new": 42},
        {**good, "new": b64e(b"short")},
        {**good, "new": "!!!"},
        {**good, "new": good["old"]},
    ]
    for obj in bad:
        with pytest.raises(KeyHandoverError):
            Handover.from_json(obj)
    with pytest.raises(KeyHandoverError, match="must be a list"):
        parse_chain({"0": good})


def test_a_chain_longer_than_any_real_one_is_refused_before_any_signature_is_checked(keys):
    h = rotations(keys)[0]
    with pytest.raises(KeyHandoverError, match="more than"):
        parse_chain([h.to_json()] * (MAX_CHAIN + 1))
    with pytest.raises(KeyHandoverError, match="more than"):
        follow(keys[0].public_key, keys[1].public_key, [h] * (MAX_CHAIN + 1))


def test_a_chain_ends_at_the_key_its_last_statement_names(keys):
    chain = rotations(keys)
    assert chain_ends_at(chain, keys[3].public_key)
    assert not chain_ends_at(chain, keys[2].public_key)
    assert chain_ends_at([], keys[0].public_key)


def test_fingerprints_are_short_stable_and_differ_per_key(keys):
    fp = fingerprint(keys[0].public_key)
    assert fp == fingerprint(keys[0].public_key)
    assert len(fp) == 39 and fp.count("-") == 7
    assert len({fingerprint(k.public_key) for k in keys}) == len(keys)
    assert fp.replace("-", "") == hashlib.sha256(b64d(keys[0].public_key)).hexdigest()[:32]
