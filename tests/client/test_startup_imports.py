"""`mist --help` and `mist status` answer in well under issue 19's 0.15 s because they import no engine: not
aiohttp, aiortc, the manifest or build-index code, nor the installer. One import at the top of the wrong module
brings them all back (client/state.py importing shared/build_index.py once doubled `mist --help`'s CPU time), so
this runs the real command line in a fresh interpreter and lists what it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("aiohttp", "aiortc", "shared.manifest", "shared.build_index", "shared.chunking", "client.installer")
PROBE = """
import json, sys
from client.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in %r if m in sys.modules)), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize("args", [["--help"], ["status"], ["install", "--help"]])
def test_the_quick_commands_import_no_engine(tmp_path: Path, args: list[str]) -> None:
    env = {**os.environ, "MIST_HOME": str(tmp_path)}
    ran = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60)
    imported = json.loads(ran.stderr.strip().splitlines()[-1])
    assert imported == [], f"`mist {' '.join(args)}` imported {imported}"
    assert ran.stdout.strip(), ran.stderr  # and it did answer
