"""Errors the `mist` and `mistpipe` commands report as one line on stderr.

    ClientError
    ├── NotLoggedIn          no saved session: run `login`
    ├── TrackerUnavailable   the tracker or seeder cannot be reached
    │   └── TrackerUnreadable    it answered what Mist cannot read (also a RemoteProtocolError): not Mist, or another version
    ├── ServerRefused        the server answered with an error (status, message)
    ├── SwarmRefused         (signalling.py) the tracker's swarm refused a request
    ├── PeerGone             (peerlink.py) the link to a friend closed or never opened: fetch from other sources
    ├── NotEnoughSpace       the update does not fit on the disk
    ├── InstallError         the install directory is unusable or the build is unknown here
    │   ├── PlayError        (app/play.py) the game cannot be started
    │   ├── FileInUse        (swap.py) Windows will not replace a file another program has open
    │   └── RecordLost       an install's kept manifest is gone from MIST_HOME/builds: fetched again from the tracker
    ├── DownloadFailed       the seeder did not deliver a chunk intact after retries
    ├── AppError             (app/launch.py) `mist app` could not start the daemon or open the app
    ├── SignInError          (app/service.py) signing in from the app failed; `kind` picks the screen
    └── QueueError           (app/downloads.py) a download queue operation that cannot be done

An update that would remove most of an install raises shared.errors.NotConfirmed.
"""

from __future__ import annotations

from shared.errors import MistError, NotConfirmed as NotConfirmed, RemoteProtocolError


class ClientError(MistError):
    """Base of the client's errors."""


class NotLoggedIn(ClientError):
    pass


class TrackerUnavailable(ClientError):
    pass


class TrackerUnreadable(TrackerUnavailable, RemoteProtocolError):
    """The tracker (or what answers at its address) broke the protocol: an answer Mist cannot read. Retried like an
    outage; the message asks whether the address is a Mist tracker of this version."""


class ServerRefused(ClientError):
    def __init__(self, status: int, message: str, detail: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class NotEnoughSpace(ClientError):
    pass


class InstallError(ClientError):
    pass


class RecordLost(InstallError):
    """The manifest kept for an install (MIST_HOME/builds) is gone; the installer fetches the signed one again."""


class DownloadFailed(ClientError):
    pass
