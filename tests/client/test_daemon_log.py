"""The friends' daemon logs as the services do: JSON lines with MIST_LOG_FORMAT=json, readable lines by
default, through the formatters of shared/logs.py, on stderr (its terminal, or daemon.log under `mist app`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waiting import wait_until

MIST = Path(sys.executable).parent / "mist"


def daemon_first_line(tmp_path: Path, log_format: str | None) -> str:
    """Start a real `mist daemon` (signed out: no tracker needed), return its first log line, stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIST_")}
    env["MIST_HOME"] = str(tmp_path / "home")
    if log_format is not None:
        env["MIST_LOG_FORMAT"] = log_format
    log = tmp_path / "daemon-stderr.txt"
    with open(log, "wb") as sink:
        process = subprocess.Popen([MIST, "daemon", "--port", "0"], env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=sink)
    try:
        line = wait_until(lambda: process.poll() is not None or next(iter(log.read_text().splitlines()), None),
                          "the daemon's first log line", timeout=60)
        assert process.poll() is None, log.read_text()
        assert isinstance(line, str)
        return line
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_with_json_asked_the_daemon_writes_json_lines(tmp_path: Path) -> None:
    line = json.loads(daemon_first_line(tmp_path, "json"))
    assert line["logger"] == "mist.daemon" and line["level"] == "INFO", line
    assert "local API at http://127.0.0.1:" in line["message"] and "signed out" in line["message"]
    assert set(line) >= {"time", "request_id"}  # the services' fields, so one reader reads both


def test_by_default_a_person_reads_it(tmp_path: Path) -> None:
    line = daemon_first_line(tmp_path, None)
    assert " mist.daemon INFO mist daemon for " in line and "local API at http://127.0.0.1:" in line, line
    with pytest.raises(ValueError):
        json.loads(line)


def test_a_log_format_it_does_not_know_stops_it_naming_the_variable(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MIST_")}, "MIST_HOME": str(tmp_path / "home"),
           "MIST_LOG_FORMAT": "xml"}
    result = subprocess.run([MIST, "daemon", "--port", "0"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "MIST_LOG_FORMAT must be 'json' or 'text' (got 'xml')" in result.stderr
