"""Every tool answers `--version` with its name and the installed version, the client's and the server's alike."""

from __future__ import annotations

import importlib

import pytest
from click.testing import CliRunner

from shared.version import installed_version

TOOLS = {"mist": "client.cli", "mistpipe": "mistpipe.cli", "mist-server": "tracker.cli.mist_server",
         "mist-tracker": "tracker.cli.mist_tracker", "mist-seeder": "seeder.main", "mist-worker": "tracker.cli.mist_worker",
         "mist-admin": "tracker.cli.mist_admin"}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_each_tool_prints_its_version(tool: str) -> None:
    main = importlib.import_module(TOOLS[tool]).main
    result = CliRunner().invoke(main, ["--version"], prog_name=tool)
    assert result.exit_code == 0 and result.output == f"{tool} {installed_version()}\n"
    assert installed_version()[0].isdigit()  # the suite runs from an install, which knows its version
