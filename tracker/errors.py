"""Errors the tracker's handlers raise; the error middleware (shared/service/errors.py) turns each into a status and JSON body."""

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
        super().__init__(message or f"the {self.part} is unavailable right now; nothing was changed, try again in a "
                         "minute (if it lasts, the admin should check the server's log)",
                         detail if detail is not None else {"unavailable": self.part})

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class DatabaseUnavailable(ServiceUnavailable):
    part = "database"


class QueueUnavailable(ServiceUnavailable):
    part = "job queue"
