"""Applying a chain of patches (A -> B -> C) on the client: real patch objects, real files; every intermediate
content is checked before the next step, and a chain that does not make the manifest's file stages nothing."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from client import patching, staging
from client.plan import PatchRef
from shared import patch
from shared.errors import PatchError
from shared.manifest import FileEntry

pytestmark = pytest.mark.same_on_every_backend  # the client alone: files in, a staged file out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _edited(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for offset in range(rng.randrange(100), len(out), 2000):
        out[offset] ^= 0x5A
    return bytes(out)


A = random.Random(7).randbytes(200_000)
B = _edited(A, 1)
C = _edited(B, 2)
TARGET = FileEntry("bin/game.exe", len(C), False, _sha(C), ())


def _step(root: Path, old: bytes, new: bytes, algorithm: str = patch.HDIFF) -> PatchRef:
    """Make the patch object as the tracker does and put it where the client fetches patch objects to."""
    obj = patch.make(old, new, algorithm)
    name = patch.object_name(obj)
    patching.patch_path(root, name).parent.mkdir(parents=True, exist_ok=True)
    patching.patch_path(root, name).write_bytes(obj)
    return PatchRef(name, _sha(old), len(obj), len(obj), algorithm, _sha(new))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "game.exe").write_bytes(A)
    staging.staged_path(tmp_path, TARGET).parent.mkdir(parents=True, exist_ok=True)
    return tmp_path


def test_a_chain_of_two_patches_stages_the_manifest_s_file(root: Path) -> None:
    steps = (_step(root, A, B), _step(root, B, C, patch.ZSTD_DICT))
    patching.apply_chain(root, TARGET, steps, root / "game.exe")
    assert staging.staged_path(root, TARGET).read_bytes() == C


def test_a_chain_that_strays_anywhere_stages_nothing(root: Path) -> None:
    first, second = _step(root, A, B), _step(root, B, C)
    elsewhere = _step(root, B, _edited(B, 3))  # a valid patch from B, but to another content than the manifest's
    wrong_source = _step(root, C, B)  # starts from C, though step one made B
    cases = {
        "the last step makes another file": (first, elsewhere),
        "a step starts from another content than the one before made": (first, wrong_source),
        "a step's object makes another content than the plan says":
            (PatchRef(first.object, first.source, first.size, first.stored_size, first.algorithm, "e" * 64), second),
    }
    for why, steps in cases.items():
        with pytest.raises(PatchError):
            patching.apply_chain(root, TARGET, steps, root / "game.exe")
        assert not staging.staged_path(root, TARGET).exists(), why
    damaged = bytearray(patching.patch_path(root, second.object).read_bytes())
    damaged[-1] ^= 1
    patching.patch_path(root, second.object).write_bytes(bytes(damaged))
    with pytest.raises(PatchError, match="damaged"):
        patching.apply_chain(root, TARGET, (first, second), root / "game.exe")
    assert not staging.staged_path(root, TARGET).exists()
