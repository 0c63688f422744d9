"""What a published build's news says (pure): sizes as people say them, per-holder update sizes, private games."""

from __future__ import annotations

import hashlib

import pytest

from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest
from tracker.notify import News, Release, discord_text, news_for, size_text, update_bytes

pytestmark = pytest.mark.same_on_every_backend  # pure: the news text and sizes


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(path: str, *pieces: bytes) -> FileEntry:
    whole = b"".join(pieces)
    return FileEntry(path, len(whole), False, sha(whole), tuple(ChunkRef(sha(p), len(p)) for p in pieces))


def build(version: str, *files: FileEntry) -> Manifest:
    return Manifest("hollow", version, DEFAULT_PARAMS, files)


A, B, C, D, E, F = (bytes([n]) * 100 for n in range(6))
V10 = build("1.0", entry("game.exe", A, B), entry("data.pak", C))
V11 = build("1.1", entry("game.exe", A, D), entry("data.pak", C, E), entry("extra.pak", E))  # E twice: paid once
V09 = build("0.9", entry("game.exe", F), entry("data.pak", C))
# Stored (compressed) sizes: what a download moves, not the chunks' own sizes.
STORED = {sha(A): 30_000_000, sha(B): 1, sha(C): 900_000_000, sha(D): 25_000_000, sha(E): 13_000_000, sha(F): 1}
INSTALL = sum(STORED[h] for h in V11.chunk_sizes())
HOLLOW = Release("hollow", "Hollow Knight", "1.1", False, INSTALL)


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (999, "999 B"), (1000, "1 KB"), (1500, "1.5 KB"), (38_000_000, "38 MB"), (38_499_999, "38 MB"),
    (9_940_000, "9.9 MB"), (9_960_000, "10 MB"), (999_400, "999 KB"), (999_600, "1 MB"), (1_234_000_000, "1.2 GB"),
    (120_000_000_000, "120 GB"), (5_000_000_000_000_000, "5000 TB"),
])
def test_sizes_read_as_people_say_them(n: int, text: str) -> None:
    assert size_text(n) == text


def test_a_holder_hears_the_stored_bytes_of_the_chunks_it_lacks_each_counted_once() -> None:
    assert update_bytes(V11, [V10], STORED) == 25_000_000 + 13_000_000  # D and E; A and C are held
    assert news_for(HOLLOW, V11, [V10], STORED) == News("Hollow Knight 1.1 is out, 38 MB update", 38_000_000, True)


def test_each_holder_hears_its_own_size() -> None:
    from_09 = news_for(HOLLOW, V11, [V09], STORED)
    assert from_09.bytes == 30_000_000 + 25_000_000 + 13_000_000  # A, D, E: 0.9 holds only C
    assert from_09.text == "Hollow Knight 1.1 is out, 68 MB update"
    both = news_for(HOLLOW, V11, [V09, V10], STORED)  # two builds on disk: the chunks of either count
    assert both.bytes == 38_000_000


def test_a_reader_holding_nothing_hears_the_install_size() -> None:
    news = news_for(HOLLOW, V11, [], STORED)
    assert news == News("Hollow Knight 1.1 is out, 968 MB to install", INSTALL, False)


def test_a_build_with_nothing_new_says_so_instead_of_zero_bytes() -> None:
    same = build("1.0.1", entry("game.exe", A, B), entry("renamed.pak", C))
    release = Release("hollow", "Hollow Knight", "1.0.1", False, 930_000_001)
    assert news_for(release, same, [V10], STORED) == News("Hollow Knight 1.0.1 is out, nothing new to download", 0, True)
    assert discord_text(release, same, V10, STORED) == "Hollow Knight 1.0.1 is out, no new data since 1.0, 930 MB to install"


def test_discord_hears_the_update_from_the_previous_build_and_the_install_size() -> None:
    assert discord_text(HOLLOW, V11, V10, STORED) == "Hollow Knight 1.1 is out, 38 MB update from 1.0, 968 MB to install"
    first = Release("hollow", "Hollow Knight", "1.0", False, 930_000_001)
    assert discord_text(first, V10, None, STORED) == "Hollow Knight 1.0 is out, 930 MB to install"


def test_discord_tells_where_to_get_mist_when_the_public_url_is_known() -> None:
    assert discord_text(HOLLOW, V11, V10, STORED, "https://mist.example.org") == (
        "Hollow Knight 1.1 is out, 38 MB update from 1.0, 968 MB to install (new to Mist? https://mist.example.org/get)")


def test_a_private_game_is_never_posted_to_discord() -> None:
    secret = Release("hollow", "Hollow Knight", "1.1", True, INSTALL)
    assert discord_text(secret, V11, V10, STORED) is None
    assert discord_text(secret, V11, None, STORED) is None


def test_the_release_notes_follow_the_line_and_long_ones_are_cut_at_a_line_s_end() -> None:
    from dataclasses import replace

    from tracker.notify import NOTES_TOLD, notes_excerpt

    noted = replace(HOLLOW, notes="Fixes the map.\nNew boss.")
    assert discord_text(noted, V11, V10, STORED) == (
        "Hollow Knight 1.1 is out, 38 MB update from 1.0, 968 MB to install\nFixes the map.\nNew boss.")
    long = "\n".join(f"line {i}: " + "x" * 50 for i in range(100))
    cut = notes_excerpt(long)
    assert len(cut) <= NOTES_TOLD + 4 and cut.endswith(" ...") and cut[:-4].splitlines()[-1].endswith("x" * 50)
