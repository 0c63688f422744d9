"""A stand-in OS keychain for tests (headless machines have none): a keyring backend over a JSON file.

Selected with PYTHON_KEYRING_BACKEND=tests.e2e.fake_keyring.FileKeychain; the file is FAKE_KEYCHAIN_FILE.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeychain(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def _path(self) -> Path:
        return Path(os.environ["FAKE_KEYCHAIN_FILE"])

    def _all(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._path.read_text()))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._all().get(f"{service}|{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = self._all()
        entries[f"{service}|{username}"] = password
        self._path.write_text(json.dumps(entries))

    def delete_password(self, service: str, username: str) -> None:
        entries = self._all()
        if entries.pop(f"{service}|{username}", None) is None:
            raise PasswordDeleteError("no such entry")
        self._path.write_text(json.dumps(entries))
