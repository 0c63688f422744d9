"""Background jobs (huey lives only here): a queue in the data directory, run by `mist-worker`.

Jobs: the store scrub (nightly and on demand), the Steam catalog sync (when
an admin sets a game's Steam app id, and on `mistpipe resync-steam`), the
patch maker (HDiffPatch patches for a new build from the build before it and
from every build friends hold, after each push; and for jumps clients asked for),
the garbage collector (nightly, after `mistpipe rm`, and on `mistpipe gc`), and
the Discord post announcing a published public build (retried through huey's
schedule, so no worker thread sleeps while Discord asks us to wait).

The embedded default keeps the queue in SQLite beside the database; with
MIST_REDIS_URL set (the compose stack) it lives in Redis, under the key prefix
MIST_QUEUE_NAME (default "mist"), so several installs can share one Redis.
Either way the tracker enqueues, the worker process executes and stores
results the tracker reads. The worker also counts each task's runs, finished
and failed, in the queue's storage (huey's atomic counters), which is how the
tracker's /metrics knows them: the worker has no HTTP port of its own.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.exceptions
from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import Task, TaskWrapper
from huey.exceptions import RetryTask, TaskException
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared import manifest as manifest_mod, patch
from shared.chunkstore import ChunkStore
from tracker.backups import unfinished_restore
from tracker.db import patches as patch_queries, queries
from tracker.db.engine import Database, open_engine
from tracker.errors import QueueUnavailable
from tracker.jobs import discord_webhook
from tracker.jobs.gc import GcReport, collect
from tracker.jobs.journal import JobJournal
from tracker.jobs.patching import make_all, make_bundles
from tracker.jobs.scrub import scrub
from tracker.jobs.steam import SteamError, fetch_appdetails
from tracker.planner import patch_pairs
from tracker.settings import Settings

RESULT_TTL = 7 * 24 * 3600
# Redis gone away (a restart, a network cut). Each command is retried for about 3 s first, which
# covers a restart; after that the caller decides whether the request can succeed without its job.
QUEUE_OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
REDIS_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=6)
TASKS = ("scrub_store", "sync_steam", "make_patches", "collect_garbage", "post_news", "nightly_scrub", "nightly_gc")
FINISHED, FAILED = "finished", "failed"
# huey files each task under its function's module and name; this module was tracker/jobs.py once, and jobs
# queued by a server of that time (in Redis, or the SQLite queue) must still find their task after an upgrade.
TASK_MODULE = "tracker.jobs"
F = TypeVar("F", bound=Callable[..., Any])


def _counter_key(outcome: str, task: str) -> str:
    return f"mist.jobs.{outcome}.{task}"


def _counted(huey: Huey, task: str, fn: F, log_to: JobJournal | None = None, wants_task: bool = False) -> F:
    """Count each run of `fn` as finished or failed in the queue's storage, before huey stores its result,
    so whoever saw the result also sees the count; and keep the run in the job journal for the admin site.

    Registered with huey's `context=True`, so the run knows its job id; `fn` gets the task only if it
    `wants_task` (to ask for a retry, or to report progress)."""

    @functools.wraps(fn)
    def run(*args: Any, task: Task | None = None, **kwargs: Any) -> Any:
        job_id, listed = str(task.id) if task is not None else "", list(args)
        journal = log_to if task is not None else None  # run in-process (`call_local`): no job to journal
        if journal:
            journal.started(job_id, task_name, listed)
        try:
            result = fn(*args, task=task, **kwargs) if wants_task else fn(*args, **kwargs)
        except RetryTask:  # not an outcome yet: huey runs it again later
            raise
        except Exception as exc:
            huey.storage.incr(_counter_key(FAILED, task_name))
            if journal:
                journal.failed(job_id, task_name, listed, f"{exc.__class__.__name__}: {exc}")
            raise
        huey.storage.incr(_counter_key(FINISHED, task_name))
        if journal:
            journal.finished(job_id, task_name, listed, result)
        return result

    task_name = task
    run.__module__ = TASK_MODULE
    return run  # type: ignore[return-value]  # the wrapper takes the task's own arguments


log = logging.getLogger("mist.jobs")


@contextmanager
def _translated() -> Iterator[None]:
    """Redis out of reach becomes QueueUnavailable here, the job queue's boundary: no layer above sees redis."""
    try:
        yield
    except QUEUE_OUTAGES as exc:
        log.error("job queue unavailable: %s", exc)
        raise QueueUnavailable() from exc


@dataclass
class Jobs:
    huey: Huey
    scrub_store: TaskWrapper
    sync_steam: TaskWrapper
    make_patches: TaskWrapper
    collect_garbage: TaskWrapper
    post_news: TaskWrapper

    def __repr__(self) -> str:
        return f"Jobs(queue={self.huey.storage.__class__.__name__}:{self.huey.name!r})"

    def enqueue_scrub(self) -> str:
        return self._enqueue(self.scrub_store)

    def enqueue_steam(self, slug: str) -> str:
        return self._enqueue(self.sync_steam, slug)

    def enqueue_patches(self, slug: str, version: str, sources: list[str] | None = None, paths: list[str] | None = None) -> str:
        return self._enqueue(self.make_patches, slug, version, sources, paths)

    def enqueue_gc(self) -> str:
        return self._enqueue(self.collect_garbage)

    def enqueue_news(
        self,
        content: str,
        attempts: int = discord_webhook.ATTEMPTS,
        first_delay: float = discord_webhook.FIRST_DELAY,
        game: str = "",
        version: str = "",
    ) -> str:
        """Post `content` to the Discord webhook of the worker's environment, trying at most `attempts` times;
        how it went is recorded on the build `game` `version` (shown by `mistpipe ls`)."""
        return self._enqueue(self.post_news, content, attempts, first_delay, game, version, retries=attempts - 1)

    def _enqueue(self, task: TaskWrapper, *args: Any, **kwargs: Any) -> str:
        """Queue a task and remember this queue issued it; QueueUnavailable if Redis does not answer."""
        with _translated():
            job_id = str(task(*args, **kwargs).id)
            self.huey.put(f"issued:{job_id}", True)
            return job_id

    def known(self, job_id: str) -> bool:
        """Whether this queue issued the job (it may still be waiting or running)."""
        with _translated():
            return bool(self.huey.storage.has_data_for_key(f"issued:{job_id}"))

    def pending(self) -> int:
        """Jobs waiting in the queue (not those running); QueueUnavailable if its storage does not answer."""
        try:
            return int(self.huey.pending_count())
        except Exception as exc:  # sqlite3, redis and OS errors alike: the queue's storage is out of reach
            raise QueueUnavailable(f"the job queue's storage does not answer ({exc.__class__.__name__}: {exc})") from exc

    def waiting(self, limit: int = 200) -> list[tuple[str, str, tuple[Any, ...], bool]]:
        """Jobs no worker has started yet, as (id, task, args, scheduled for later: a retry); QueueUnavailable if
        the queue's storage does not answer (the admin page says so instead of listing them)."""
        try:
            pending = [(str(t.id), str(t.name), tuple(t.args), False) for t in self.huey.pending(limit=limit)]
            later = [(str(t.id), str(t.name), tuple(t.args), True) for t in self.huey.scheduled(limit=limit)]
        except Exception as exc:  # sqlite3, redis and OS errors alike: the queue's storage is out of reach
            log.error("job queue unavailable: %s: %s", exc.__class__.__name__, exc)
            raise QueueUnavailable() from exc
        return pending + later

    def outcomes(self) -> dict[tuple[str, str], int]:
        """(task, "finished" | "failed") -> runs counted by every worker since the queue was made."""
        try:
            # incr by 0 is how huey's storage API reads a counter (its own rate limiter does the same)
            return {
                (task, outcome): int(self.huey.storage.incr(_counter_key(outcome, task), 0))
                for task in TASKS
                for outcome in (FINISHED, FAILED)
            }
        except Exception as exc:
            raise QueueUnavailable(f"the job queue's storage does not answer ({exc.__class__.__name__}: {exc})") from exc

    def result(self, job_id: str) -> tuple[bool, Any]:
        """(done, result) for a job; the result stays readable after the first look. A job that raised is
        done, with {"error": ...} as its result, so whoever waits for it hears why instead of waiting on."""
        with _translated():
            if not self.huey.storage.has_data_for_key(job_id):
                return False, None
        try:
            with _translated():
                return True, self.huey.result(job_id, preserve=True)
        except TaskException as exc:
            return True, {"error": f"the job failed: {exc.metadata.get('error', exc)}; the worker's log has the details"}


def open_queue(settings: Settings) -> Huey:
    """The queue: Redis when MIST_REDIS_URL is set, else SQLite in the data directory."""
    if settings.redis_url:
        pool = redis.ConnectionPool.from_url(
            settings.redis_url, retry=REDIS_RETRY, retry_on_error=list(QUEUE_OUTAGES), health_check_interval=30
        )
        return RedisHuey(settings.queue_name, connection_pool=pool, results=True)
    return SqliteHuey(settings.queue_name, filename=str(settings.data / "jobs.db"), results=True)


def open_jobs(settings: Settings) -> Jobs:
    """The queue and its tasks, as the tracker queues them and the worker runs them."""
    data = settings.data
    huey = open_queue(settings)
    stores: list[ChunkStore] = []

    def store() -> ChunkStore:
        """Opened on the first job that needs it: the tracker only queues, and a bucket client is not free."""
        if not stores:
            stores.append(settings.store.open(settings.store_root))
        return stores[0]

    def scrub_now() -> dict[str, object]:
        return scrub(store()).to_json()

    databases: list[Database] = []

    def database() -> Database:
        if not databases:
            databases.append(Database(open_engine(settings.resolved_database_url())))
        return databases[0]

    journal = JobJournal(database)

    def counted(task: str, fn: Callable[..., Any], wants_task: bool = False) -> Callable[..., Any]:
        return _counted(huey, task, fn, journal, wants_task)

    huey.periodic_task(crontab(hour="4", minute="17"), name="nightly_scrub", context=True)(counted("nightly_scrub", scrub_now))

    def sync_steam_now(slug: str) -> dict[str, object]:
        """Fetch the game's Steam details into the catalog, never over fields the admin set by hand."""
        db = database()
        app_id = db.call(lambda s: queries.steam_app(s, slug))
        if app_id is None:
            return {"game": slug, "synced": False, "error": "the game has no Steam app id"}
        try:
            details = fetch_appdetails(app_id, settings.steam_url, settings.steam_timeout)
        except SteamError as exc:
            log.warning("could not fetch %s's details from the Steam store (app %s): %s", slug, app_id, exc)
            why = str(exc)  # a name the lambda can hold: `exc` is unbound once the except block ends
            db.call(lambda s: queries.record_steam(s, slug, None, None, why))
            return {"game": slug, "synced": False, "error": why}
        db.call(lambda s: queries.record_steam(s, slug, details.short_description, details.header_image, ""))
        return {"game": slug, "synced": True, "error": ""}

    def make_patches_now(
        slug: str, version: str, sources: list[str] | None, paths: list[str] | None, task: Task
    ) -> dict[str, object]:
        return make_build_patches(
            database(), store(), slug, version, sources, paths, lambda done, total: journal.progress(str(task.id), done, total)
        )

    def collect_garbage_now() -> dict[str, object]:
        unfinished = unfinished_restore.refusal(data, "collect garbage")  # the catalog may not name all it holds yet
        if unfinished:
            return GcReport(error=unfinished).to_json()
        return collect(database(), store(), settings.gc_grace).to_json()

    def post_news_recorded(
        content: str, attempts: int, first_delay: float, game: str = "", version: str = "", *, task: Task
    ) -> dict[str, object]:
        """`post_news_now`, and its final outcome recorded on the build (a retry is not an outcome yet), so
        `mistpipe ls` shows a post that did not go out, not only the worker's log."""
        outcome = post_news_now(settings.discord_webhook_url, content, attempts, first_delay, task)
        if game and (outcome["posted"] or settings.discord_webhook_url):
            status = "posted" if outcome["posted"] else f"not posted: {outcome['reason']}"
            database().call(lambda s: queries.record_news_status(s, game, version, status))
        return outcome

    # Before the scrub, so the scrub does not read what is about to be removed.
    huey.periodic_task(crontab(hour="3", minute="47"), name="nightly_gc", context=True)(
        counted("nightly_gc", collect_garbage_now)
    )
    return Jobs(
        huey,
        huey.task(name="scrub_store", context=True)(counted("scrub_store", scrub_now)),
        huey.task(name="sync_steam", context=True)(counted("sync_steam", sync_steam_now)),
        huey.task(name="make_patches", context=True)(counted("make_patches", make_patches_now, wants_task=True)),
        huey.task(name="collect_garbage", context=True)(counted("collect_garbage", collect_garbage_now)),
        huey.task(name="post_news", context=True)(counted("post_news", post_news_recorded, wants_task=True)),
    )


def post_news_now(url: str, content: str, attempts: int, first_delay: float, task: Task) -> dict[str, object]:
    """One attempt to post to Discord; a retry goes back to huey's schedule (RetryTask) instead of sleeping here.

    `task.retries` counts the attempts left (enqueued as attempts - 1). RetryTask does not use one up by
    itself (huey adds one back), so this attempt takes its own off before asking for the retry.
    """
    attempt = attempts - task.retries
    if not url:
        return {"posted": False, "attempts": 0, "reason": f"{discord_webhook.ENV} is not set in the worker's environment"}
    wrong = discord_webhook.check_url(url)
    if wrong:
        log.error("not posting to Discord: %s", wrong)
        return {"posted": False, "attempts": 0, "reason": wrong}
    answer = discord_webhook.post(url, content)
    step = discord_webhook.next_step(answer, attempt, attempts, first_delay)
    if not step.done:
        log.warning(
            "Discord post to %s: %s; attempt %d of %d in %.1f s",
            discord_webhook.where(url),
            step.reason,
            attempt + 1,
            attempts,
            step.delay,
        )
        task.retries -= 1
        raise RetryTask(step.reason, delay=step.delay)
    if step.posted:
        log.info("posted to Discord at %s: %s", discord_webhook.where(url), content)
    else:
        log.error("not posted to Discord at %s: %s", discord_webhook.where(url), step.reason)
    return {"posted": step.posted, "attempts": attempt, "status": answer.status, "reason": step.reason}


def make_build_patches(
    db: Database,
    store: ChunkStore,
    slug: str,
    version: str,
    sources: list[str] | None = None,
    paths: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """HDiffPatch patches into `slug` `version` from the given builds (default: the previous one and those friends hold).

    `progress(done, total)` hears of each pair made (the admin site shows it)."""
    started = time.monotonic()
    wanted = db.call(lambda s: patch_queries.build_manifest(s, slug, version))
    if wanted is None:
        return {"game": slug, "version": version, "made": 0, "error": "the build no longer exists"}
    target = manifest_mod.parse(wanted.data)
    if sources is None:
        held = db.call(lambda s: patch_queries.patch_sources(s, slug, version))
    else:
        held = db.call(lambda s: patch_queries.manifests_by_digest(s, sources, queries.Viewer("", True)))
    pairs = patch_pairs(target, [manifest_mod.parse(m.data) for m in held], paths)
    done = db.call(lambda s: patch_queries.attempted(s, {t.sha256 for _, t in pairs}))

    todo = [(s, t) for s, t in pairs if (s.sha256, t.sha256, patch.HDIFF) not in done]
    recorded = [0]
    if progress:
        progress(0, len(todo))

    def record(*row: Any) -> None:
        db.call(lambda s: patch_queries.record_patch(s, *row))
        recorded[0] += 1
        if progress:
            progress(recorded[0], len(todo))

    made, failed = make_all(store, pairs, patch.HDIFF, record, done)
    useful = [m for m in made if m.useful]
    bundles = make_bundles(
        store,
        target,
        [manifest_mod.parse(m.data) for m in held],
        paths,
        done,
        lambda *row: db.call(lambda s: patch_queries.record_patch(s, *row)),
    )
    return {
        "game": slug,
        "version": version,
        "from": sorted(m.version for m in held),
        "pairs": len(pairs),
        "made": len(useful),
        "not_worth_it": len(made) - len(useful),
        "failed": failed,
        "patch_bytes": sum(m.stored_size for m in useful),
        "chunk_bytes": sum(m.chunk_bytes for m in useful),
        "bundles": len(bundles),
        "bundle_bytes": sum(m.stored_size for m in bundles),
        "seconds": round(time.monotonic() - started, 3),
    }
