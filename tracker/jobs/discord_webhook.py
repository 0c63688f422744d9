"""Posting a line to a Discord webhook (urllib lives here): one attempt per call, and what to do after it.

Discord answers an executed webhook with 204 No Content; with 429, a
`Retry-After` header and a JSON `retry_after` (seconds) when we post too fast;
with 5xx when it is unwell; with another 4xx when the webhook is wrong or was
deleted. `post` makes one attempt and reads the answer; `next_step` (pure)
decides: done, or try again after Discord's wait (429) or an exponential
backoff with jitter (5xx, no answer), for a bounded number of attempts. A
wrong webhook is not retried. The webhook URL holds its token, so it never
appears in a log line or a job result.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

ENV = "MIST_DISCORD_WEBHOOK_URL"
TIMEOUT = 10.0  # one attempt holds a worker thread at most this long
ATTEMPTS = 6
FIRST_DELAY = 2.0  # backoff before the 2nd attempt; doubling: 2, 4, 8, 16, 32 s (about a minute in all)
MAX_DELAY = 300.0
MAX_RETRY_AFTER = 900.0  # Discord asking for longer than this: the news would be stale, give up
MAX_CONTENT = 2000  # Discord's limit for `content`
USER_AGENT = "Mist-notifier/0.1"  # Discord's edge refuses some default library agents


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the HTTP status (0: no answer at all), the wait Discord asked for, and its message."""

    status: int
    retry_after: float | None = None
    message: str = ""

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        if self.status == 0:
            return f"no answer from Discord ({self.message})"
        return f"Discord answered {self.status}" + (f" ({self.message})" if self.message else "")


@dataclass(frozen=True)
class Step:
    """After an attempt: done (posted, or given up with the reason), or try again after `delay` seconds."""

    done: bool
    posted: bool = False
    delay: float = 0.0
    reason: str = ""


def payload(content: str) -> bytes:
    """The execute-webhook body: the line, with every @mention disabled (a game title must not ping anyone)."""
    return json.dumps({"content": content[:MAX_CONTENT], "allowed_mentions": {"parse": []}}).encode()


def _seconds(raw: object) -> float | None:
    try:
        value = float(raw)  # type: ignore[arg-type]  # any value: float() decides, its errors are caught
    except (TypeError, ValueError):
        return None  # an HTTP date or garbage: fall back to the body, or to our own backoff
    return value if value >= 0 else None


def read_answer(status: int, headers: Mapping[str, str], body: bytes) -> Answer:
    """Discord's answer to one post. On 429 the wait comes from `Retry-After` (always seconds), else from the
    body's `retry_after` (seconds in API v10; the header is preferred because old API versions sent ms there)."""
    try:
        obj = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        obj = {}
    if not isinstance(obj, dict):
        obj = {}
    message = str(obj.get("message", ""))[:200]
    wait = None
    if status == 429:
        header = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        wait = _seconds(header) if header is not None else None
        if wait is None:
            wait = _seconds(obj.get("retry_after"))
    return Answer(status, wait, message)


def next_step(
    answer: Answer, attempt: int, attempts: int = ATTEMPTS, first_delay: float = FIRST_DELAY, rng: random.Random | None = None
) -> Step:
    """What to do after attempt number `attempt` (1-based) of at most `attempts` got `answer`."""
    if answer.delivered:
        return Step(done=True, posted=True, reason=f"posted (attempt {attempt})")
    if 400 <= answer.status < 500 and answer.status != 429:
        return Step(done=True, reason=f"{answer.describe()}: {ENV} is wrong or the webhook was deleted; not retried")
    if attempt >= attempts:
        return Step(done=True, reason=f"gave up after {attempt} attempts; the last: {answer.describe()}")
    if answer.status == 429 and answer.retry_after is not None:
        if answer.retry_after > MAX_RETRY_AFTER:
            return Step(
                done=True, reason=f"Discord asked us to wait {answer.retry_after:.0f} s; the news would be stale, gave up"
            )
        return Step(done=False, delay=answer.retry_after, reason=answer.describe())
    ceiling = min(MAX_DELAY, first_delay * 2 ** (attempt - 1))
    jitter = (rng or random.Random()).uniform(0.5, 1.0)  # so a recovering Discord is not hit by every retry at once
    return Step(done=False, delay=ceiling * jitter, reason=answer.describe())


def where(url: str) -> str:
    """The webhook's host, for log lines: the path holds the webhook's token."""
    return urllib.parse.urlsplit(url).netloc or "(no host)"


def check_url(url: str) -> str | None:
    """Why this URL cannot be a webhook, or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return f"{ENV} must be a webhook address like https://discord.com/api/webhooks/ID/TOKEN"
    return None


def post(url: str, content: str, timeout: float = TIMEOUT) -> Answer:
    """One attempt to post `content`; every network failure becomes an Answer with status 0."""
    request = urllib.request.Request(
        url, data=payload(content), method="POST", headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return read_answer(response.status, dict(response.headers), response.read(64 * 1024))
    except urllib.error.HTTPError as exc:
        with exc:
            return read_answer(exc.code, dict(exc.headers or {}), exc.read(64 * 1024))
    except urllib.error.URLError as exc:
        return Answer(0, None, str(exc.reason))
    except (TimeoutError, socket.timeout):
        return Answer(0, None, f"no answer within {timeout:.0f} s")
    except (http.client.HTTPException, OSError) as exc:
        return Answer(0, None, f"{exc.__class__.__name__}: {exc}")
