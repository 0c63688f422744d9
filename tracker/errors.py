"""Errors the tracker's handlers raise; the error middleware (shared/service/errors.py) turns each into a status and JSON body.

TrackerError                 500 unless a kind below says otherwise
├── BadRequest               400
├── Unauthorized             401
│   └── NotSignedIn          (admin/session.py) no admin session: the browser goes to the sign-in form
├── Forbidden                403
│   └── NotAnAdmin           (admin/session.py) the session's account may no longer use the site
├── NotFound                 404
├── Conflict                 409
│   ├── DataInUse            (datalock.py) another tracker or admin command holds the data directory
│   └── PreviousGone         (db/queries.py) a build a commit trusted for its chunks left the catalog: check them all
├── PayloadTooLarge          413
├── LoginRefused             (throttle.py) 429: too many failed logins; try again after `retry_after`
├── ServiceUnavailable       503: a part the tracker depends on does not answer; nothing changed, try again
│   ├── DatabaseUnavailable
│   └── QueueUnavailable
├── NoDatabase               (db/engine.py) an admin command found no database where it looked
├── DumpError                (db/dump.py) the database could not be dumped or loaded
│   └── DatabaseNotEmpty     loading would overwrite a database that holds tables
├── BackupError              (backups/directory.py) a backup could not be made, or cannot be restored
│   ├── BackupIncomplete     it did not finish, or lacks part of what it lists
│   └── BackupCorrupt        part of it does not match its checksum or name: use another copy
├── KeyFilesError            (keys.py) the key files are in a state the tracker must not start from
└── SteamError               (jobs/steam.py) the Steam store gave no usable details: the catalog keeps its own
"""

from __future__ import annotations

from shared.errors import MistError


class TrackerError(MistError):
    status = 500

    def __init__(self, message: str, detail: object = None) -> None:
        super().__init__(message)
        self.detail = detail


class BadRequest(TrackerError):
    status = 400


class Unauthorized(TrackerError):
    status = 401


class Forbidden(TrackerError):
    status = 403


class NotFound(TrackerError):
    status = 404


class Conflict(TrackerError):
    status = 409


class PayloadTooLarge(TrackerError):
    status = 413


class ServiceUnavailable(TrackerError):
    """A part the tracker depends on (its database, the job queue's storage) does not answer: nothing was changed,
    and the caller may try again (the answer carries Retry-After)."""

    status = 503
    part = "service"
    retry_after = 5  # seconds: a database or Redis restart takes about this long

    def __init__(self, message: str = "", detail: object = None) -> None:
        super().__init__(
            message
            or f"the {self.part} is unavailable right now; nothing was changed, try again in a "
            "minute (if it lasts, the admin should check the server's log)",
            detail if detail is not None else {"unavailable": self.part},
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class DatabaseUnavailable(ServiceUnavailable):
    part = "database"


class QueueUnavailable(ServiceUnavailable):
    part = "job queue"
