"""Benchmark corpus: real consecutive releases of real packages, unpacked as "builds".

Chunking parameters must be chosen on data that changes the way game builds
change, not on synthetic edits. Game updates are mostly (a) a recompiled
executable, (b) an engine/library tree where a few files change, (c) a large
data or archive file with scattered edits, and (d) a player coming back after
several patches. Package registries are the only outside data reachable here,
so each case is a pair of published releases of a package that has that shape.

Downloads and unpacked trees are cached under ~/.cache/mist-bench/ (outside the
repo: ~1 GB), so only the first run touches the network.

Run `python bench/corpus.py` to fetch everything and print the pairs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CACHE_DIR = Path.home() / ".cache" / "mist-bench"

Registry = Literal["pypi", "npm", "apt"]

# Wheels are fetched for the project's interpreter on Linux x86-64; pip needs
# every manylinux tag a wheel might be published under.
WHEEL_PYTHON = "3.11"
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")


@dataclass(frozen=True)
class Release:
    """One published version of one package in one registry."""

    registry: Registry
    package: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


@dataclass(frozen=True)
class PairSpec:
    """What to fetch for one pair, and why it stands for a kind of game update."""

    name: str
    kind: str
    old: Release
    new: Release
    why: str
    between: tuple[Release, ...] = ()  # pushed after old and before new; the client never installs them


@dataclass(frozen=True)
class Pair:
    """An old build and the new build a client holding the old one updates to."""

    name: str
    kind: str
    old_dir: Path
    new_dir: Path
    between_dirs: tuple[Path, ...] = ()


PAIR_SPECS: tuple[PairSpec, ...] = (
    PairSpec(
        "biome", "exe",
        Release("npm", "@biomejs/cli-linux-x64", "2.6.7"),
        Release("npm", "@biomejs/cli-linux-x64", "2.6.8"),
        "one 100 MB Rust executable, two patch releases: a game binary hotfix",
    ),
    PairSpec(
        "esbuild", "exe",
        Release("npm", "@esbuild/linux-x64", "0.28.1"),
        Release("npm", "@esbuild/linux-x64", "0.28.2"),
        "one 11 MB Go executable, two patch releases: a small game binary hotfix",
    ),
    PairSpec(
        "esbuild-jump", "jump",
        Release("npm", "@esbuild/linux-x64", "0.27.4"),
        Release("npm", "@esbuild/linux-x64", "0.28.2"),
        "the 11 MB Go executable a minor release apart, 0.28.1 pushed between: a friend who skipped a hotfix "
        "(issue 19's jump: the first update after the pushes)",
        between=(Release("npm", "@esbuild/linux-x64", "0.28.1"),),
    ),
    PairSpec(
        "libreoffice-core", "exe",
        Release("apt", "libreoffice-core", "4:7.4.7-1+deb12u13"),
        Release("apt", "libreoffice-core", "4:7.4.7-1+deb12u14"),
        "120 MB of C++ shared libraries rebuilt for a small security patch, same compiler",
    ),
    PairSpec(
        "panda3d", "engine",
        Release("pypi", "panda3d", "1.10.15"),
        Release("pypi", "panda3d", "1.10.16"),
        "a 3D game engine wheel, 170 MB in ~750 files, two patch releases",
    ),
    PairSpec(
        "browser-compat-data", "data",
        Release("npm", "@mdn/browser-compat-data", "8.1.6"),
        Release("npm", "@mdn/browser-compat-data", "8.1.7"),
        "one 20 MB JSON data file with scattered small edits: game tables/localisation",
    ),
    PairSpec(
        "openjdk-17-jre", "data",
        Release("apt", "openjdk-17-jre-headless", "17.0.19+10-1~deb12u2"),
        Release("apt", "openjdk-17-jre-headless", "17.0.21.1+2-1~deb12u1"),
        "a 129 MB archive file (lib/modules, a pak-like resource image) plus a VM; "
        "the two updates apt offers",
    ),
    PairSpec(
        "panda3d-jump", "jump",
        Release("pypi", "panda3d", "1.10.13"),
        Release("pypi", "panda3d", "1.10.16"),
        "the engine three releases apart: a player returning after several patches",
    ),
)


def _safe(part: str) -> str:
    """Make a package name or version usable as one path component."""
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in part)


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _download_pypi(rel: Release, dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--only-binary=:all:", "--python-version", WHEEL_PYTHON, "--implementation", "cp",
           "--dest", str(dest)]
    for platform in WHEEL_PLATFORMS:
        cmd += ["--platform", platform]
    proc = _run(cmd + [f"{rel.package}=={rel.version}"], dest)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {rel.label} failed:\n{proc.stderr[-2000:]}")


def _download_npm(rel: Release, dest: Path) -> None:
    proc = _run(["npm", "pack", "--silent", "--pack-destination", str(dest),
                 f"{rel.package}@{rel.version}"], dest)
    if proc.returncode != 0:
        raise RuntimeError(f"npm pack {rel.label} failed:\n{proc.stderr[-2000:]}")


def _download_apt(rel: Release, dest: Path) -> None:
    """apt-get download; on a fresh machine the package lists are empty, so
    refresh them once and retry before giving up. Debian drops superseded
    security versions from its index, so these pairs are the ones that can
    rot; the cache keeps a fetched pair usable."""
    spec = f"{rel.package}={rel.version}"
    proc = _run(["apt-get", "download", "-q", spec], dest)
    if proc.returncode != 0:
        _run(["apt-get", "update", "-qq"], dest)
        proc = _run(["apt-get", "download", "-q", spec], dest)
    if proc.returncode != 0:
        raise RuntimeError(f"apt-get download {spec} failed:\n{proc.stderr[-2000:]}")


_DOWNLOADERS = {"pypi": _download_pypi, "npm": _download_npm, "apt": _download_apt}


def fetch(rel: Release) -> Path:
    """Download one release's package file into the cache (once) and return it."""
    home = CACHE_DIR / "downloads" / rel.registry / _safe(rel.package) / _safe(rel.version)
    existing = [p for p in home.glob("*") if p.is_file()] if home.is_dir() else []
    if existing:
        return existing[0]
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent) as tmp:
        _DOWNLOADERS[rel.registry](rel, Path(tmp))
        files = [p for p in Path(tmp).iterdir() if p.is_file()]
        if len(files) != 1:
            raise RuntimeError(f"expected one file for {rel.label}, got {[f.name for f in files]}")
        staged = Path(tmp) / "done"
        staged.mkdir()
        files[0].rename(staged / files[0].name)
        staged.rename(home)
    return home / files[0].name


def _strip_first(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """npm tarballs put everything under one top folder (usually package/);
    drop it so the build root is the package root, then apply the safe
    'data' filter."""
    parts = member.name.split("/", 1)
    if len(parts) < 2 or not parts[1]:
        return None
    return tarfile.data_filter(member.replace(name=parts[1], deep=False), path)


def _unpack(archive: Path, dest: Path) -> None:
    name = archive.name
    if name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = Path(zf.extract(info, dest))
                mode = info.external_attr >> 16
                if mode and not info.is_dir():
                    target.chmod(mode & 0o755 | 0o600)
    elif name.endswith(".tgz"):
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter=_strip_first)
    elif name.endswith(".deb"):
        proc = _run(["dpkg-deb", "-x", str(archive), str(dest)], dest)
        if proc.returncode != 0:
            raise RuntimeError(f"dpkg-deb -x {archive} failed:\n{proc.stderr}")
    else:
        raise RuntimeError(f"don't know how to unpack {archive}")


def build_dir(rel: Release) -> Path:
    """Return the unpacked tree of one release, fetching and unpacking it once."""
    home = CACHE_DIR / "builds" / rel.registry / _safe(rel.package) / _safe(rel.version)
    if home.is_dir():
        return home
    archive = fetch(rel)
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=home.parent, prefix=".unpack-"))
    try:
        _unpack(archive, tmp)
        tmp.rename(home)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return home


def corpus_pairs(names: list[str] | None = None) -> list[Pair]:
    """Fetch (or reuse from cache) every pair, or just the named ones."""
    specs = [s for s in PAIR_SPECS if names is None or s.name in names]
    unknown = set(names or ()) - {s.name for s in specs}
    if unknown:
        raise ValueError(f"unknown pairs: {sorted(unknown)}")
    return [Pair(s.name, s.kind, build_dir(s.old), build_dir(s.new), tuple(build_dir(r) for r in s.between))
            for s in specs]


def tree_size(root: Path) -> tuple[int, int]:
    """(regular files, bytes) of a build; symlinks are skipped because Mist
    manifests reject them."""
    files = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = Path(dirpath, n)
            if p.is_file() and not p.is_symlink():
                files += 1
                total += p.stat().st_size
    return files, total


def main() -> None:
    specs = {s.name: s for s in PAIR_SPECS}
    downloaded = 0
    print("| pair | kind | old | new | files old/new | MB old/new |")
    print("|---|---|---|---|---|---|")
    for pair in corpus_pairs():
        spec = specs[pair.name]
        downloaded += fetch(spec.old).stat().st_size + fetch(spec.new).stat().st_size
        (fo, bo), (fn, bn) = tree_size(pair.old_dir), tree_size(pair.new_dir)
        print(f"| {pair.name} | {pair.kind} | {spec.old.label} | {spec.new.label} "
              f"| {fo}/{fn} | {bo / 1e6:.1f}/{bn / 1e6:.1f} |")
    print(f"\npackage files (counted per pair, shared ones twice): {downloaded / 1e6:.0f} MB; "
          f"cache: {CACHE_DIR}")


if __name__ == "__main__":
    main()
