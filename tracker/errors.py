"""Errors the tracker's handlers raise; the middleware in tracker/app.py turns each into a status and JSON body."""

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
    """A part the tracker depends on (its database, the job queue's storage) does not answer."""

    status = 503


class DatabaseUnavailable(ServiceUnavailable):
    pass


class QueueUnavailable(ServiceUnavailable):
    pass
