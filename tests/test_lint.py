"""ruff over the packages, as part of the suite: its lint (undefined names, unused imports and variables, statement
mistakes: pyproject.toml's [tool.ruff.lint]) and its formatter, so layout is never a review's subject.
`ruff format shared client tracker seeder mistpipe` fixes what the format check finds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "client", "tracker", "seeder", "mistpipe")


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing_in_the_packages() -> None:
    result = ruff("check", "--no-cache", "--output-format", "concise", *PACKAGES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_packages_are_as_ruff_formats_them() -> None:
    result = ruff("format", "--check", "--no-cache", *PACKAGES)
    assert result.returncode == 0, "run `ruff format " + " ".join(PACKAGES) + "`:\n" + result.stdout + result.stderr


def test_the_format_check_catches_a_misformatted_module(tmp_path: Path) -> None:
    module = tmp_path / "crooked.py"
    module.write_text("def f( a ):\n    return {'a':a}\n")
    result = ruff("format", "--check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(module))
    assert result.returncode != 0 and "crooked.py" in result.stdout, result.stdout + result.stderr


def test_the_lint_catches_an_undefined_name(tmp_path: Path) -> None:
    """The check above is only worth having if it fails on what it is for."""
    module = tmp_path / "broken.py"
    module.write_text("def f() -> int:\n    return undefined_name\n")
    result = ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(module))
    assert result.returncode != 0 and "F821" in result.stdout, result.stdout + result.stderr
