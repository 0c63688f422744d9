"""A value someone sent (a report's reason, a user name) is logged on its record's own line, escaped, in text and
in JSON: it can never forge a line that reads like the server's."""

from __future__ import annotations

import json
import logging
import sys

from shared.logs import JsonFormatter, TextFormatter

FORGED = "bad chunk\n2026-12-06 07:00:00,000 mist.tracker INFO admin password reset\r\u2028and \x1b[31mred"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("the server's own trouble")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("mist.swarm", logging.WARNING, __file__, 1, message, args, info)


def test_text_lines_escape_what_was_sent_and_keep_tracebacks_below() -> None:
    line = TextFormatter().format(record("%s reported %s: %s", "alice", "bob", FORGED))
    assert "\n" not in line and "\r" not in line and "\u2028" not in line and "\x1b" not in line
    assert line.endswith("mist.swarm WARNING alice reported bob: bad chunk\\n2026-12-06 07:00:00,000 mist.tracker INFO "
                         "admin password reset\\r\\u2028and \\x1b[31mred")
    with_trace = TextFormatter().format(record("failed on %s", FORGED, exc=True)).splitlines()
    assert "bad chunk\\n2026" in with_trace[0] and with_trace[-1] == "ValueError: the server's own trouble"


def test_json_lines_hold_one_object_each() -> None:
    line = JsonFormatter().format(record("%s", FORGED))
    assert len(line.splitlines()) == 1 and json.loads(line)["message"] == FORGED
