"""The worker's record of each background job it ran: running, done or failed (with the error), and progress.

Jobs still waiting are not here: the queue itself lists them (tracker/jobs/queue.py, `Jobs.waiting`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tracker.db.models import JobRecord

ERROR_CHARS = 1000
RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass(frozen=True)
class JobRow:
    id: str
    task: str
    args: list[Any]
    state: str
    error: str
    result: dict[str, Any] | None
    progress_done: int
    progress_total: int
    started_at: float
    finished_at: float | None
    retry_of: str


def _row(r: JobRecord) -> JobRow:
    try:
        result = json.loads(r.result) if r.result else None
    except ValueError:
        result = None
    return JobRow(
        r.id,
        r.task,
        json.loads(r.args or "[]"),
        r.state,
        r.error,
        result if isinstance(result, dict) else None,
        r.progress_done,
        r.progress_total,
        r.started_at,
        r.finished_at,
        r.retry_of,
    )


def started(session: Session, job_id: str, task: str, args: list[Any], now: float, retry_of: str = "") -> None:
    found = session.get(JobRecord, job_id)
    if found is None:
        session.add(
            JobRecord(
                id=job_id,
                task=task,
                args=json.dumps(args, default=str),
                state=RUNNING,
                error="",
                result="",
                progress_done=0,
                progress_total=0,
                started_at=now,
                finished_at=None,
                retry_of=retry_of,
            )
        )
    else:  # a retry the admin asked for (its row waits, "queued"), or huey running a task again after RetryTask
        found.task, found.args, found.state, found.error, found.finished_at = (
            task,
            json.dumps(args, default=str),
            RUNNING,
            "",
            None,
        )
        found.started_at = found.started_at or now


def progress(session: Session, job_id: str, done: int, total: int) -> None:
    session.execute(update(JobRecord).where(JobRecord.id == job_id).values(progress_done=done, progress_total=total))


def finished(session: Session, job_id: str, now: float, result: object) -> None:
    error = result.get("error", "") if isinstance(result, dict) else ""
    session.execute(
        update(JobRecord)
        .where(JobRecord.id == job_id)
        .values(
            state=FAILED if error else DONE,
            error=str(error)[:ERROR_CHARS],
            finished_at=now,
            result=json.dumps(result, default=str)[:200_000],
        )
    )


def failed(session: Session, job_id: str, now: float, error: str) -> None:
    session.execute(
        update(JobRecord).where(JobRecord.id == job_id).values(state=FAILED, error=error[:ERROR_CHARS], finished_at=now)
    )


def mark_retried(session: Session, job_id: str, new_id: str) -> None:
    """Note on the new job which failed one it retries (the row appears when the worker starts it)."""
    session.add(
        JobRecord(
            id=new_id,
            task="",
            args="[]",
            state="queued",
            error="",
            result="",
            progress_done=0,
            progress_total=0,
            started_at=0.0,
            finished_at=None,
            retry_of=job_id,
        )
    )


def get(session: Session, job_id: str) -> JobRow | None:
    found = session.get(JobRecord, job_id)
    return _row(found) if found is not None else None


def recent(session: Session, limit: int = 50, tasks: tuple[str, ...] = ()) -> list[JobRow]:
    query = select(JobRecord).where(JobRecord.state != "queued")
    if tasks:
        query = query.where(JobRecord.task.in_(tasks))
    return [_row(r) for r in session.scalars(query.order_by(JobRecord.started_at.desc()).limit(limit))]


def failed_since(session: Session, since: float) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(JobRecord).where(JobRecord.state == FAILED, JobRecord.started_at >= since)
        )
        or 0
    )


def prune(session: Session, now: float, days: float) -> int:
    result = session.execute(delete(JobRecord).where(JobRecord.started_at < now - days * 86400, JobRecord.state != RUNNING))
    return int(getattr(result, "rowcount", 0) or 0)
