"""The house style says types are checked with mypy: this makes the check part of the suite.

mypy runs in strict mode (pyproject.toml). The whole project is checked for Linux, where the server runs; what a friend runs (client/ and shared/)
also for Windows and macOS, so a POSIX-only call (fcntl, os.pread, O_NOFOLLOW, SIGKILL) cannot slip in
without a fallback. The services' plumbing under shared/service/ runs on the server only, so it is left out
of that check (and should a friend's module import it, mypy follows the import and the check fails). Each platform keeps its own cache: a run after a small change rechecks little.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRIENDS_SIDE = ("client", "shared", "--exclude", "^shared/service/")


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True)


def test_mypy_finds_no_type_errors() -> None:
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_the_friends_side_type_checks_for_windows_and_macos(platform: str) -> None:
    result = mypy("--platform", platform, "--cache-dir", str(ROOT / ".mypy_cache" / platform), *FRIENDS_SIDE)
    assert result.returncode == 0, result.stdout + result.stderr


IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def test_every_type_ignore_names_its_error_and_says_why() -> None:
    """strict mode, and an ignore is an exception to it: it names the error it silences and a reason beside it."""
    bare = []
    for package in ("shared", "client", "tracker", "seeder", "mistpipe"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found = IGNORE.search(line)
                if found and (not found["codes"] or not found["rest"].strip().startswith("#")):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "type: ignore without [code]  # reason:\n" + "\n".join(bare)


def test_the_platform_check_catches_a_posix_only_call(tmp_path: Path) -> None:
    """The check above is only worth having if it fails on what it is for."""
    module = tmp_path / "posix_only.py"
    module.write_text("import os\n\n\ndef read(fd: int) -> bytes:\n    return os.pread(fd, 1, 0)\n")
    result = mypy("--platform", "win32", "--no-incremental", str(module))
    assert result.returncode != 0 and "pread" in result.stdout, result.stdout
