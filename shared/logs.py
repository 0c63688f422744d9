"""How every Mist process writes its log: one JSON object per line, or one readable line per record.

The services (shared/service/observability.py adds their request ids) and the friends' daemon use the
same formatters, so one log reader reads them all. Nothing here imports aiohttp: the client runs on
Windows and macOS and needs none of the servers' plumbing.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import IO, Any

from shared.environment import FORMAT_ENV, FORMATS, log_format

__all__ = ["FORMAT_ENV", "FORMATS", "log_format", "JsonFormatter", "TextFormatter", "one_line", "log_to"]
ACCESS_FIELDS = ("client", "method", "path", "status", "bytes", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the access fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # JSON escapes the control characters; Unicode's line separators it leaves, and some readers split on them.
        return json.dumps(line, ensure_ascii=False, default=str).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# Every control character (and Unicode's line and paragraph separators) as an escape: a value someone sent (a
# report's reason, a user name) can then never start a line of its own that reads like the program's.
_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)}


def one_line(text: str) -> str:
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """Lines a person reads: one per record (what was logged is escaped onto it), the request id at the end
    when there is one; only the program's own tracebacks take lines of their own below it."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.name} {record.levelname} {one_line(record.getMessage())}"
        request_id = getattr(record, "request_id", None)
        if request_id:
            line += f" [request {one_line(str(request_id))}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def log_to(chosen: str, stream: IO[str] | None = None, filters: Sequence[logging.Filter] = ()) -> None:
    """Send every log record at INFO and above to `stream` (stderr) in the format `chosen` (`json` or `text`)."""
    if chosen not in FORMATS:
        raise ValueError(f"a log format is 'json' or 'text' (got {chosen!r})")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    for each in filters:
        handler.addFilter(each)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
