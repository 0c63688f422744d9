"""Deterministic game trees and their next versions, for end-to-end tests.

A tree has nested folders, a few large binary files (some compressible, some
not), many small text files, empty files and executables; `next_version`
adds, removes, edits in place, renames and changes modes, as real updates do.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

MB = 1024 * 1024


def _binary(rng: random.Random, size: int, compressible: bool) -> bytes:
    if not compressible:
        return rng.randbytes(size)
    words = [rng.randbytes(rng.randint(4, 40)) for _ in range(200)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


def make_tree(root: Path, seed: int = 1, small_files: int = 300, large: tuple[int, ...] = (6 * MB, 3 * MB, 2 * MB)) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i, size in enumerate(large):
        path = root / "data" / f"pak{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_binary(rng, size, compressible=i % 2 == 1))
    (root / "bin").mkdir(exist_ok=True)
    game = root / "bin" / "game"
    game.write_bytes(_binary(rng, 900 * 1024, compressible=True))
    game.chmod(0o755)
    for i in range(small_files):
        folder = root / "assets" / f"level{i % 7}" / ("deep" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        text = "\n".join(f"entity {j} {rng.random():.6f} {rng.choice(['tree', 'rock', 'npc'])}" for j in range(rng.randint(0, 60)))
        (folder / f"item{i}.txt").write_text(text)
    (root / "empty.cfg").write_bytes(b"")
    (root / "assets" / "level0" / "blank").write_bytes(b"")
    return root


def next_version(old: Path, new: Path, seed: int) -> Path:
    """A copy of `old` changed the way a patch release changes a game."""
    rng = random.Random(seed)
    shutil.copytree(old, new, symlinks=False)
    pak = new / "data" / "pak0.bin"
    data = bytearray(pak.read_bytes())
    at = rng.randrange(len(data) // 2)
    data[at : at + 5000] = rng.randbytes(5000)  # edit in place
    data[len(data) // 3 : len(data) // 3] = rng.randbytes(70_000)  # insertion shifts the rest
    pak.write_bytes(bytes(data))
    game = new / "bin" / "game"
    game.write_bytes(game.read_bytes()[:-1000] + rng.randbytes(3000))
    texts = sorted(new.rglob("item*.txt"))
    for path in rng.sample(texts, 10):
        path.unlink()  # removed
    for path in rng.sample([p for p in texts if p.exists()], 5):
        path.rename(path.with_name("renamed-" + path.name))  # renamed
    for path in rng.sample([p for p in texts if p.exists()], 10):
        path.write_text(path.read_text() + f"\npatched {seed}")  # edited
    (new / "assets" / f"new{seed}").mkdir(exist_ok=True)
    (new / "assets" / f"new{seed}" / "extra.bin").write_bytes(rng.randbytes(300_000))  # added
    tool = next(p for p in sorted(new.rglob("item*.txt")) if p.exists())
    tool.chmod(0o755)  # mode change only
    return new


def snapshot(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file under root (but the client's .mist folder) with its bytes and executable bit."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == root and d == ".mist")]
        for name in filenames:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = (path.read_bytes(), bool(path.stat().st_mode & 0o100))
    return out


def assert_same_tree(expected: Path, actual: Path, extra: frozenset[str] | set[str] = frozenset()) -> None:
    """`actual` holds exactly `expected`'s files (bytes and modes), and besides them at most the `extra` paths."""
    want, got = snapshot(expected), snapshot(actual)
    got = {p: v for p, v in got.items() if p not in extra}
    assert sorted(want) == sorted(got), f"file lists differ: missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}"
    for path in want:
        assert want[path][0] == got[path][0], f"{path} differs"
        assert want[path][1] == got[path][1], f"{path} executable bit differs"
