"""What Mist says when a build is published: one line per reader, sized for what that reader would download.

Pure: the new build's manifest, the builds a reader holds and the stored
(compressed) size of every chunk and the patches made so far in, text out. A
friend holding a build of the game hears the update's size, counted as the
planner counts it (per file, the chunks they lack or a smaller patch from a
file they hold; each chunk once); a friend holding none hears the install size. Discord, where no one in particular is reading,
hears both the update from the previous build and the install size, and never
hears of a private game: its existence is as secret there as in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from shared.manifest import Manifest
from tracker.planner import PatchOption, plan_update


@dataclass(frozen=True)
class Release:
    """A build just published: which game (slug and title), which version, and what installing it moves."""

    game: str
    title: str
    version: str
    private: bool
    install_bytes: int  # stored bytes of all the build's chunks: a fresh install's download
    notes: str = ""  # the admin's release notes


NOTES_TOLD = 1500  # of the release notes, what a news message and a Discord post carry (Discord takes 2000 in all)


def notes_excerpt(notes: str) -> str:
    """The release notes as news carries them: cut at NOTES_TOLD characters, on a line's end where there is one."""
    if len(notes) <= NOTES_TOLD:
        return notes
    cut = notes[:NOTES_TOLD]
    return (cut[: cut.rfind("\n")] if "\n" in cut else cut).rstrip() + " ..."


@dataclass(frozen=True)
class News:
    """What one reader is told: the line, and the bytes it stands for (an update's or an install's)."""

    text: str
    bytes: int
    update: bool  # True: from a build the reader holds; False: a fresh install

    def to_json(self) -> dict[str, object]:
        return {"text": self.text, "bytes": self.bytes, "update": self.update}


def size_text(n: int) -> str:
    """A byte count as people say it: "38 MB", "1.2 GB", "512 B" (decimal units, like the rest of Mist)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 9.95:
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
        if value < 999.5 or unit == "TB":
            return f"{value:.0f} {unit}"
    raise AssertionError("unreachable: TB takes every larger value")


def update_bytes(
    target: Manifest, held: Sequence[Manifest], stored: Mapping[str, int], patches: Iterable[PatchOption] = ()
) -> int:
    """What the planner would send a client holding `held`: per file the chunks it lacks, or a smaller patch."""
    plan = plan_update(target, [f.path for f in target.files], held, stored, patches)
    return sum(plan.bytes_by_source().values())


def news_for(
    release: Release, target: Manifest, held: Sequence[Manifest], stored: Mapping[str, int], patches: Iterable[PatchOption] = ()
) -> News:
    """The line for a reader holding `held` (builds of this game; empty: none)."""
    head = f"{release.title} {release.version} is out"
    if not held:
        return News(f"{head}, {size_text(release.install_bytes)} to install", release.install_bytes, False)
    size = update_bytes(target, held, stored, patches)
    if size == 0:
        return News(f"{head}, nothing new to download", 0, True)
    return News(f"{head}, {size_text(size)} update", size, True)


def discord_text(
    release: Release,
    target: Manifest,
    previous: Manifest | None,
    stored: Mapping[str, int],
    public_url: str = "",
    patches: Iterable[PatchOption] = (),
) -> str | None:
    """The public line: the update from the build before and the install size, and where a friend without
    the client gets it (the tracker's /get page, when its public URL is configured); None for a private game."""
    if release.private:
        return None
    head = f"{release.title} {release.version} is out"
    install = f"{size_text(release.install_bytes)} to install"
    get = f" (new to Mist? {public_url}/get)" if public_url else ""
    notes = f"\n{notes_excerpt(release.notes)}" if release.notes else ""
    if previous is None:
        return f"{head}, {install}{get}{notes}"
    size = update_bytes(target, [previous], stored, patches)
    change = f"{size_text(size)} update from {previous.version}" if size else f"no new data since {previous.version}"
    return f"{head}, {change}, {install}{get}{notes}"
