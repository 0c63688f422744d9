"""ruff's lint over the packages, as part of the suite: undefined names, unused imports and variables, statement
mistakes (the rules are pyproject.toml's [tool.ruff.lint]). Taste is not checked here; errors are."""

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


def test_the_lint_catches_an_undefined_name(tmp_path: Path) -> None:
    """The check above is only worth having if it fails on what it is for."""
    module = tmp_path / "broken.py"
    module.write_text("def f() -> int:\n    return undefined_name\n")
    result = ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(module))
    assert result.returncode != 0 and "F821" in result.stdout, result.stdout + result.stderr
