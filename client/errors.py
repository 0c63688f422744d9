"""Errors the `mist` and `mistpipe` commands report as one line on stderr.

    ClientError
    ├── NotLoggedIn          no saved session: run `login`
    ├── TrackerUnavailable   the tracker or seeder cannot be reached
    ├── ServerRefused        the server answered with an error (status, message)
    ├── NotEnoughSpace       the update does not fit on the disk
    ├── InstallError         the install directory is unusable or the build is unknown here
    ├── NotConfirmed         an update would remove most of an install and no one said yes
    └── DownloadFailed       the seeder did not deliver a chunk intact after retries
"""

from __future__ import annotations

from shared.errors import MistError


class ClientError(MistError):
    """Base of the client's errors."""


class NotLoggedIn(ClientError):
    pass


class TrackerUnavailable(ClientError):
    pass


class ServerRefused(ClientError):
    def __init__(self, status: int, message: str, detail: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class NotEnoughSpace(ClientError):
    pass


class InstallError(ClientError):
    pass


class NotConfirmed(ClientError):
    """An update would remove most of an install; `why` says what, for a prompt or the app's dialog."""

    def __init__(self, why: str) -> None:
        super().__init__(f"{why}. Nothing was changed; if that is what you want, run again with --yes")
        self.why = why


class DownloadFailed(ClientError):
    pass
