"""The server's commands on a client-only install: a clear way out instead of an ImportError's traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.same_on_every_backend

WITHOUT = "import sys; sys.modules[{module!r}] = None; sys.argv = [{command!r}, '--help']; " \
          "from tracker.cli import entrypoints; entrypoints.{function}()"


@pytest.mark.parametrize("command, module", [("mist-server", "sqlalchemy"), ("mist-worker", "huey")])
def test_without_the_server_extra_the_command_says_how_to_get_it(command: str, module: str) -> None:
    """`sys.modules[name] = None` makes importing it fail as on an install that lacks it."""
    code = WITHOUT.format(module=module, command=command, function=command.replace("-", "_"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{command} is part of Mist's server" in result.stderr and "pip install 'mist[server]'" in result.stderr


def test_with_it_the_command_runs() -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT.format(module="no_such_module", command="mist-admin",
                                                                  function="mist_admin")], capture_output=True, text=True)
    assert result.returncode == 0 and "Usage: mist-admin" in result.stdout, result.stderr
