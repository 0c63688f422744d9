"""Tickets: the seeder and peers check them offline with the tracker's public key and an injected clock."""

import json

import pytest

from shared.errors import TicketError, TicketSignatureError
from shared.signing import Signer, b64d, b64e
from shared.tickets import READ, UPLOAD, Ticket, decode, require

NOW = 1_700_000_000
BUILD = "f826bbf443a13a4720bdf875cee3151bdb201799384c45c70264c0b15e9420f5"


@pytest.fixture(scope="module")
def tracker() -> Signer:
    return Signer.generate()


@pytest.fixture
def read_ticket() -> Ticket:
    return Ticket(subject="alice", scope=READ, build=BUILD, expires=NOW + 600)


def signed_payload(signer: Signer, payload: bytes) -> str:
    return f"{b64e(payload)}.{signer.sign(payload)}"


def test_encode_then_decode_round_trips(tracker, read_ticket):
    assert decode(read_ticket.encode(tracker), tracker.public_key, now=NOW) == read_ticket


def test_upload_ticket_round_trips(tracker):
    ticket = Ticket("admin", UPLOAD, "", NOW + 60)
    assert decode(ticket.encode(tracker), tracker.public_key, now=NOW) == ticket


def test_ticket_is_valid_until_just_before_it_expires(tracker, read_ticket):
    decode(read_ticket.encode(tracker), tracker.public_key, now=read_ticket.expires - 0.001)


@pytest.mark.parametrize("late", [0, 1, 86400])
def test_expired_ticket_is_refused(tracker, read_ticket, late):
    with pytest.raises(TicketError, match="expired"):
        decode(read_ticket.encode(tracker), tracker.public_key, now=read_ticket.expires + late)


def test_ticket_forged_with_another_key_is_refused(tracker, read_ticket):
    with pytest.raises(TicketSignatureError, match="not issued by this tracker"):  # its own type: maybe the key rotated
        decode(read_ticket.encode(Signer.generate()), tracker.public_key, now=NOW)


def test_an_expired_or_malformed_ticket_is_not_a_signature_error(tracker, read_ticket):
    """Only a failing signature sends the seeder or a daemon to ask the tracker for a newer key."""
    for token, now in ((read_ticket.encode(tracker), read_ticket.expires + 1), ("a.b", NOW)):
        with pytest.raises(TicketError) as caught:
            decode(token, tracker.public_key, now=now)
        assert not isinstance(caught.value, TicketSignatureError)


@pytest.mark.parametrize(
    "change", [{"build": "0" * 64}, {"exp": NOW + 10**9}, {"scope": UPLOAD}, {"sub": "mallory"}]
)
def test_tampered_payload_is_refused(tracker, read_ticket, change):
    payload_text, signature = read_ticket.encode(tracker).split(".")
    payload = json.loads(b64d(payload_text))
    payload.update(change)
    forged = f"{b64e(json.dumps(payload).encode())}.{signature}"
    with pytest.raises(TicketError, match="signature is invalid"):
        decode(forged, tracker.public_key, now=NOW)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", ".", "..", "!!!.???", 42, None])
def test_malformed_ticket_is_refused(tracker, token):
    with pytest.raises(TicketError):
        decode(token, tracker.public_key, now=NOW)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"sub":"a"}', b'{"build":"","exp":1800000000,"scope":"read","sub":"a","x":1}'],
)
def test_signed_but_malformed_payload_is_refused(tracker, payload):
    with pytest.raises(TicketError, match="malformed"):
        decode(signed_payload(tracker, payload), tracker.public_key, now=NOW)


def test_signed_ticket_with_unknown_scope_is_refused(tracker):
    token = Ticket("alice", "admin", "", NOW + 60).encode(tracker)
    with pytest.raises(TicketError, match="unknown"):
        decode(token, tracker.public_key, now=NOW)


def test_require_passes_for_the_granted_scope_and_build(read_ticket):
    require(read_ticket, READ, BUILD)
    require(Ticket("admin", UPLOAD, "", NOW), UPLOAD)


def test_require_refuses_another_scope(read_ticket):
    with pytest.raises(TicketError, match="this needs 'upload'"):
        require(read_ticket, UPLOAD)
    with pytest.raises(TicketError, match="this needs 'read'"):
        require(Ticket("admin", UPLOAD, "", NOW), READ, BUILD)


def test_require_refuses_a_read_ticket_for_another_build(read_ticket):
    with pytest.raises(TicketError, match="another build"):
        require(read_ticket, READ, "0" * 64)
