"""Ed25519 signatures: what the tracker signs verifies with its key, and nothing else does."""

import stat

import pytest

from shared.errors import SignatureError
from shared.signing import Signer, b64d, b64e, fingerprint, verify

DATA = b'{"game":"hollow","version":"1.0.2"}'


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


def test_a_signature_verifies_with_the_signers_key(signer):
    verify(signer.public_key, DATA, signer.sign(DATA))


@pytest.mark.parametrize("index", [0, len(DATA) // 2, len(DATA) - 1])
def test_a_flipped_byte_of_data_fails(signer, index):
    signature = signer.sign(DATA)
    altered = bytearray(DATA)
    altered[index] ^= 0x01
    with pytest.raises(SignatureError, match="does not verify"):
        verify(signer.public_key, bytes(altered), signature)


def test_a_flipped_bit_of_the_signature_fails(signer):
    raw = bytearray(b64d(signer.sign(DATA)))
    raw[10] ^= 0x80
    with pytest.raises(SignatureError):
        verify(signer.public_key, DATA, b64e(bytes(raw)))


def test_a_signature_by_another_key_fails(signer):
    with pytest.raises(SignatureError):
        verify(signer.public_key, DATA, Signer.generate().sign(DATA))


@pytest.mark.parametrize("signature", ["", "A", "not base64 at all!", "@@@@", "AAAA", "A" * 200])
def test_garbage_signature_fails(signer, signature):
    with pytest.raises(SignatureError):
        verify(signer.public_key, DATA, signature)


@pytest.mark.parametrize("public_key", ["", "A", "garbage!", "AAAA"])
def test_garbage_public_key_fails(signer, public_key):
    with pytest.raises(SignatureError):
        verify(public_key, DATA, signer.sign(DATA))


def test_base64url_is_unpadded_and_round_trips():
    for data in (b"", b"\xff", b"\xfb\xff", b"\x00\x01\x02"):
        text = b64e(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert b64d(text) == data


def test_repr_shows_only_the_public_key(signer):
    assert repr(signer) == f"Signer(public_key={signer.public_key!r})"


def test_load_or_create_creates_a_private_file_and_reloads_the_same_key(tmp_path):
    path = tmp_path / "keys" / "tracker.key"
    first = Signer.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Signer.load_or_create(path)
    assert again.public_key == first.public_key
    verify(first.public_key, DATA, again.sign(DATA))


def test_load_or_create_does_not_replace_an_existing_key(tmp_path):
    path = tmp_path / "tracker.key"
    first = Signer.load_or_create(path)
    content = path.read_bytes()
    Signer.load_or_create(path)
    assert path.read_bytes() == content
    assert Signer.load_or_create(path).public_key == first.public_key


def test_save_writes_a_private_file_that_load_reads_back(signer, tmp_path):
    path = tmp_path / "signing.key"
    path.write_bytes(b"an older key, replaced whole")
    signer.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Signer.load(path).public_key == signer.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["signing.key"]  # no temporary file left


def test_load_refuses_a_file_that_is_not_a_key(tmp_path):
    path = tmp_path / "signing.key"
    path.write_bytes(b"\x00" * 31)  # a truncated write
    with pytest.raises(SignatureError, match="not an Ed25519 signing key"):
        Signer.load(path)
    with pytest.raises(SignatureError, match="not an Ed25519 signing key"):
        Signer.load_or_create(path)


def test_a_fingerprint_names_the_public_key_not_the_private_one(signer):
    assert fingerprint(signer.public_key) != fingerprint(Signer.generate().public_key)
    assert signer.public_key not in fingerprint(signer.public_key)
