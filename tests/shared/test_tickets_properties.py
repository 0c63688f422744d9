"""Properties of tickets: any ticket the tracker issues decodes as itself until it expires, and any token a
friend or a stranger shows the seeder or a peer gets a TicketError or a ticket the tracker really signed."""

from __future__ import annotations

from contextlib import suppress

import pytest
from hypothesis import given, strategies as st

from shared.errors import TicketError
from shared.signing import Signer, b64e
from shared.tickets import SCOPES, Ticket, decode
from tests.hostile import as_json_bytes, json_values, mutations, odd_text
from tests.shared.strategies import sha256_hex

pytestmark = pytest.mark.same_on_every_backend  # pure: tokens in, verdicts out

NOW = 1_700_000_000
TRACKER = Signer.generate()
OTHER = Signer.generate()

# What the tracker puts in a ticket: a user name (any text it can encode), a scope, a build or none, an expiry.
names = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
tickets = st.builds(Ticket, names, st.sampled_from(SCOPES), sha256_hex | st.just(""),
                    st.integers(min_value=NOW + 1, max_value=2**63), names)


def _signed(payload: bytes, signer: Signer = TRACKER) -> str:
    return f"{b64e(payload)}.{signer.sign(payload)}"


@given(tickets)
def test_a_ticket_decodes_as_itself_until_it_expires_and_encodes_to_the_same_token(ticket: Ticket) -> None:
    token = ticket.encode(TRACKER)
    assert decode(token, TRACKER.public_key, now=NOW) == ticket
    assert decode(token, TRACKER.public_key, now=NOW).encode(TRACKER) == token
    with pytest.raises(TicketError, match="expired"):
        decode(token, TRACKER.public_key, now=ticket.expires)
    with pytest.raises(TicketError, match="signature"):
        decode(token, OTHER.public_key, now=NOW)


@given(st.one_of(odd_text, st.text(), st.lists(odd_text | st.text("A-_.=", max_size=60), max_size=4).map(".".join)))
def test_any_text_shown_as_a_ticket_gets_only_a_ticket_error(token: str) -> None:
    with suppress(TicketError):
        decode(token, TRACKER.public_key, now=NOW)
    raise_only_ticket_errors = decode  # the key may be garbage too: a seeder configured with the wrong one
    with suppress(TicketError):
        raise_only_ticket_errors(_signed(b"{}"), token, now=NOW)


@given(tickets, st.data())
def test_a_token_changed_anywhere_is_refused_or_is_the_same_ticket(ticket: Ticket, data: st.DataObject) -> None:
    """(Base64's last character has bits no byte uses, so a few changes decode to the same signed bytes.)"""
    token = ticket.encode(TRACKER)
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    changed = token[:at] + data.draw(st.sampled_from("AZaz09-_.=+/ \u202e")) + token[at + 1:]
    try:
        found = decode(changed, TRACKER.public_key, now=NOW)
    except TicketError:
        return
    assert found == ticket


@given(
    st.binary(max_size=200)
    | json_values.map(as_json_bytes)
    | tickets.flatmap(lambda t: mutations({"sub": t.subject, "scope": t.scope, "build": t.build, "exp": t.expires,
                                           "sid": t.session})).map(as_json_bytes)
)
def test_any_payload_even_one_the_tracker_signed_gets_a_ticket_error_or_a_ticket(payload: bytes) -> None:
    """Wrong types, huge numbers, deep nesting, bad UTF-8 in the claims: a TicketError, never another error."""
    with suppress(TicketError):
        ticket = decode(_signed(payload), TRACKER.public_key, now=NOW)
        assert ticket.scope in SCOPES and ticket.expires > NOW


def test_a_signed_payload_nested_too_deep_is_a_ticket_error() -> None:
    """Found by the property above: json.loads raises RecursionError, not a ValueError, on `[[[[...`."""
    with pytest.raises(TicketError, match="malformed"):
        decode(_signed(b"[" * 5000 + b"]" * 5000), TRACKER.public_key, now=NOW)
