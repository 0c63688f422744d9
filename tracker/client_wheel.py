"""The friends' wheel, made from the client this server runs: `pip install https://TRACKER/get/mist-V-py3-none-any.whl`.

A wheel is a zip of the packages plus a few metadata files (PEP 427), so the
tracker makes it itself from the installed `client` and `shared` packages: no
build step for the admin, no package index for the friend, and the client is
always the server's own version. Its dependencies are the distribution's base
requirements (those under no extra), which pip fetches as usual. The zip is the
same bytes for the same files (sorted, fixed dates), so it can carry an ETag.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import client
import shared

DISTRIBUTION = "mist"
PACKAGES = (client, shared)
ENTRY_POINTS = "[console_scripts]\nmist = client.cli:main\n"
SUMMARY = "Mist's client for friends: install and update the games your friends' server shares."
_EPOCH = (1980, 1, 1, 0, 0, 0)
_EXTRA = re.compile(r"\bextra\s*==")


@dataclass(frozen=True)
class Wheel:
    filename: str
    data: bytes
    sha256: str


def base_requirements(requires: list[str]) -> list[str]:
    """The requirements that no extra guards: what the client needs."""
    return [r for r in requires if not _EXTRA.search(r)]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _package_files(root: Path) -> list[tuple[str, bytes]]:
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append((f"{root.name}/{path.relative_to(root).as_posix()}", path.read_bytes()))
    return files


def build(version: str, requires: list[str], packages: list[Path]) -> Wheel:
    """A py3-none-any wheel of `packages` with the `mist` command, requiring `requires`."""
    info = f"{DISTRIBUTION}-{version}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {DISTRIBUTION}\n",
            f"Version: {version}\n",
            f"Summary: {SUMMARY}\n",
            "Requires-Python: >=3.11\n",
            *(f"Requires-Dist: {r}\n" for r in requires),
        ]
    )
    files = [f for package in packages for f in _package_files(package)]
    files += [
        (f"{info}/METADATA", metadata.encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mist-tracker\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{info}/entry_points.txt", ENTRY_POINTS.encode()),
        (f"{info}/top_level.txt", "".join(f"{p.name}\n" for p in packages).encode()),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files) + f"{info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*files, (f"{info}/RECORD", record.encode())]:
            entry = zipfile.ZipInfo(name, _EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    data = buffer.getvalue()
    return Wheel(f"{DISTRIBUTION}-{version}-py3-none-any.whl", data, hashlib.sha256(data).hexdigest())


def from_this_install() -> Wheel:
    """The wheel of the client this process runs, with the installed distribution's version and base requirements."""
    version = importlib.metadata.version(DISTRIBUTION)
    requires = base_requirements(importlib.metadata.requires(DISTRIBUTION) or [])
    return build(version, requires, [Path(p.__file__).parent for p in PACKAGES])  # type: ignore[arg-type]  # packages always have __file__
