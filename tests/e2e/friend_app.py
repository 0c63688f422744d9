"""The app's test helpers: a friend's `mist daemon` with calls to its local API, waiting for a condition, and
header images like a store's (the browser itself: tests/e2e/browser.py)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import BIN, Person
from tests.waiting import wait_until


@dataclass
class Daemon:
    """A friend's `mist daemon`, and calls to its local API with the token from daemon.json."""

    person: Person
    process: subprocess.Popen
    url: str
    token: str
    log: Path

    @classmethod
    def start(cls, person: Person, env: dict[str, str] | None = None) -> "Daemon":
        """Start it and wait until it listens; its stderr goes to daemon-stderr.txt beside MIST_HOME (a pipe
        nobody reads would stop it once full)."""
        full = {**os.environ, "MIST_HOME": str(person.home), **(env or {})}
        log = person.home.parent / f"{person.home.name}-daemon-stderr.txt"
        with open(log, "ab") as sink:
            before = sink.tell()  # an earlier daemon of this home said it listened too: only this one's lines count
            process = subprocess.Popen([BIN / "mist", "daemon", "--port", "0"], env=full, stdout=subprocess.DEVNULL,
                                       stderr=sink)
        def listening() -> str | None:
            assert process.poll() is None, log.read_text()
            text = log.read_bytes()[before:].decode(errors="replace")
            return next((t for t in text.splitlines() if "local API at http://127.0.0.1:" in t), None)

        wait_until(listening, "the daemon to listen", 60, 0.1)
        address = json.loads((person.home / "daemon.json").read_text())
        return cls(person, process, address["url"], address["token"], log)

    def call(self, path: str, method: str = "GET", body: object = None, headers: dict[str, str] | None = None,
             token: bool = True) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {self.token}"} if token else {}),
                **(headers or {})}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if response.headers.get_content_type() == "application/json" else raw
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw

    def one_time_url(self) -> str:
        status, body = self.call("/api/app/open-address", "POST")
        assert status == 200, body
        return str(body["url"])

    def stop(self) -> str:
        """Stop it as a service manager would; its stderr."""
        self.process.terminate()
        assert self.process.wait(timeout=30) == 0, self.log.read_text()[-3000:]
        return self.log.read_text()


def make_art(folder: Path, title: str, colours: tuple[str, str]) -> Path:
    """A header image like a store's (460x215, a gradient and the title), made by ImageMagick."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (title.lower().replace(" ", "-") + ".jpg")
    subprocess.run(["convert", "-size", "460x215", f"gradient:{colours[0]}-{colours[1]}", "-font", "DejaVu-Sans-Bold",
                    "-pointsize", "38", "-fill", "white", "-gravity", "southwest", "-annotate", "+24+24", title,
                    str(path)], check=True, capture_output=True)
    return path
