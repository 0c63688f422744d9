"""The saved login of `mist` or `mistpipe`: tracker URL, tokens and the pinned tracker key.

The tokens go to the OS keychain (keyring) when there is one; where there is
none (headless Linux, CI) they stay in the session file, which only the user
can read (mode 0600). The session file in MIST_HOME always says which, so a
command only loads keyring (a third of a second) when the tokens are there.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from client.errors import NotLoggedIn
from shared.rawfile import open_fd

KEYCHAIN, FILE = "keychain", "file"
WINDOWS_SECRET_BYTES = 5 * 512  # CRED_MAX_CREDENTIAL_BLOB_SIZE
_SECRETS = ("access_token", "refresh_token")


@dataclass
class Credentials:
    url: str
    user: str
    scope: str
    access_token: str
    access_expires: float
    refresh_token: str
    public_key: str
    secrets_in: str = field(default=FILE)

    def __repr__(self) -> str:
        return f"Credentials(url={self.url!r}, user={self.user!r}, scope={self.scope!r}, secrets_in={self.secrets_in!r})"


# Windows has no mode bits: a file in the user's profile folder is private by that folder's permissions.
PRIVATE_FILE = "readable by your Windows account only" if sys.platform == "win32" else "mode 0600"


def path_for(home: Path, tool: str) -> Path:
    return home / f"credentials-{tool}.json"


def _service(home: Path, tool: str) -> str:
    """One keychain entry per tool and MIST_HOME, so separate clients on one machine stay separate."""
    return f"mist:{tool}:{home.resolve()}"


def fits_keychain(secret: str, platform: str = sys.platform) -> bool:
    """Windows' Credential Manager holds at most 2560 bytes of UTF-16 (1280 characters) a secret; macOS' Keychain
    and the Secret Service have no such limit. A session that does not fit stays in the file instead."""
    return platform != "win32" or len(secret.encode("utf-16-le")) <= WINDOWS_SECRET_BYTES


def _keychain_set(service: str, secret: str) -> str | None:
    """Store in the OS keychain; return its name, or None where there is no usable keychain."""
    if not fits_keychain(secret):
        return None
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return None
    try:
        keyring.set_password(service, "session", secret)
    except (keyring.errors.KeyringError, RuntimeError, OSError):
        return None
    return str(keyring.get_keyring().name)


def _keychain_get(service: str) -> str | None:
    import keyring
    import keyring.errors

    try:
        return keyring.get_password(service, "session")
    except (keyring.errors.KeyringError, RuntimeError, OSError):
        return None


def _keychain_delete(service: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(service, "session")
    except (keyring.errors.KeyringError, RuntimeError, OSError):
        pass


def _write_private(path: Path, obj: dict[str, object]) -> None:
    """The whole new session or the old one, even after a power cut: a re-pinned key must not be half-written."""
    tmp = path.with_suffix(".tmp")
    fd = open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(home: Path, tool: str) -> Credentials:
    path = path_for(home, tool)
    try:
        obj = json.loads(path.read_text())
        if obj.get("secrets_in") == KEYCHAIN:
            secret = _keychain_get(_service(home, tool))
            if secret is None:
                raise NotLoggedIn(f"the saved login's tokens are gone from the OS keychain; run `{tool} login` again")
            obj.update(json.loads(secret))
        return Credentials(**obj)
    except FileNotFoundError:
        raise NotLoggedIn(f"not logged in; run `{tool} login URL --user NAME` first") from None
    except (ValueError, TypeError) as exc:
        raise NotLoggedIn(f"saved login at {path} is unreadable; run `{tool} login` again") from exc


def save(home: Path, tool: str, creds: Credentials, try_keychain: bool = False) -> str:
    """Save the session; on login (`try_keychain`) prefer the OS keychain. Return where the tokens went."""
    path = path_for(home, tool)
    obj = asdict(creds)
    secrets = {name: obj.pop(name) for name in _SECRETS}
    keychain = None
    if try_keychain or creds.secrets_in == KEYCHAIN:
        keychain = _keychain_set(_service(home, tool), json.dumps(secrets))
    if keychain:
        creds.secrets_in = obj["secrets_in"] = KEYCHAIN
        _write_private(path, obj)
        return f"the OS keychain ({keychain}), with the rest in {path}"
    creds.secrets_in = FILE
    _write_private(path, {**obj, **secrets, "secrets_in": FILE})
    return f"{path} ({PRIVATE_FILE}; no OS keychain here)"


def forget(home: Path, tool: str) -> bool:
    path = path_for(home, tool)
    try:
        in_keychain = json.loads(path.read_text()).get("secrets_in") == KEYCHAIN
    except (FileNotFoundError, ValueError):
        in_keychain = False
    if in_keychain:
        _keychain_delete(_service(home, tool))
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
