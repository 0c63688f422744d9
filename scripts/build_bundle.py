#!/usr/bin/env python3
"""Build the standalone `mist` for this computer's platform: one folder with its own Python, zipped for /get.

    python scripts/build_bundle.py [--out DIST]          (Linux, macOS)
    py scripts\\build_bundle.py [--out DIST]              (Windows)

Run it on the platform it is for (PyInstaller does not cross-build), in a
virtualenv with Mist's bundle extra: `pip install '.[bundle]'`. It writes
DIST/mist/ (the program: DIST/mist/mist, or mist.exe) and
DIST/mist-<os>-<arch>.tar.gz (Linux) or .zip (Windows, macOS), named as the
tracker's /get page expects: put that file in the server's DATA/get/ folder.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OS_NAMES = {"win32": "windows", "darwin": "macos", "linux": "linux"}
# Loaded by name at run time, so PyInstaller's import scan cannot see them: keyring's backends come through
# entry points (their metadata must travel too), and aiortc's codecs through PyAV.
HIDDEN = ["--collect-submodules", "keyring.backends", "--copy-metadata", "keyring", "--collect-submodules", "aiortc",
          "--collect-submodules", "pyfastcdc",  # its Cython build is imported in a try, with a slow fallback
          "--collect-submodules", "client", "--collect-submodules", "shared"]


def archive_name() -> str:
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64")
    return f"mist-{OS_NAMES.get(sys.platform, sys.platform)}-{machine}"


def build(out: Path, work: Path) -> Path:
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--onedir", "--console", "--name", "mist", "--distpath", str(out), "--workpath", str(work),
                    "--specpath", str(work), "--paths", str(ROOT), *HIDDEN, str(ROOT / "client" / "__main__.py")],
                   check=True, cwd=ROOT)
    return out / "mist"


def pack(folder: Path, out: Path) -> Path:
    """The folder as one archive: tar.gz keeps Linux's executable bits; zip is what Windows and macOS open."""
    kind = "gztar" if sys.platform == "linux" else "zip"
    return Path(shutil.make_archive(str(out / archive_name()), kind, root_dir=folder.parent, base_dir=folder.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where to put the folder and the archive")
    parser.add_argument("--no-archive", action="store_true", help="build the folder only")
    args = parser.parse_args()
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        sys.exit("PyInstaller is missing: pip install '.[bundle]' (in the virtualenv Mist is installed in), then run this again")
    out = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="mist-bundle-") as work:
        folder = build(out, Path(work))
    print(f"built {folder}")
    if not args.no_archive:
        print(f"packed {pack(folder, out)}: put it in the server's DATA/get/ folder to offer it on /get")


if __name__ == "__main__":
    main()
