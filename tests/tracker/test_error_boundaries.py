"""The tracker's layers translate their libraries' errors at their own boundary: the web layer sees Mist's errors.

A database out of reach is DatabaseUnavailable from `Database.call` (a bad statement stays a bug), and Redis
out of reach is QueueUnavailable from `Jobs`, both real: a closed port on loopback, not a mock.
"""

from __future__ import annotations

import ast
import socket
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.shared.test_error_tree import modules
from tracker.db.engine import Database
from tracker.errors import DatabaseUnavailable, QueueUnavailable
from tracker.jobs.queue import open_jobs
from tracker.settings import Settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_a_database_out_of_reach_is_database_unavailable_with_a_retry_after() -> None:
    engine = create_engine(f"postgresql+psycopg://mist@127.0.0.1:{closed_port()}/mist", connect_args={"connect_timeout": 5})
    with pytest.raises(DatabaseUnavailable) as raised:
        Database(engine).call(lambda session: session.execute(text("SELECT 1")).all())
    assert raised.value.status == 503 and raised.value.headers == {"Retry-After": "5"}
    assert raised.value.detail == {"unavailable": "database"} and "try again" in str(raised.value)


def test_a_bad_statement_is_not_taken_for_an_outage(tmp_path: Path) -> None:
    db = Database(create_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(OperationalError):
        db.call(lambda session: session.execute(text("SELECT nothing FROM nowhere")).all())


def test_redis_out_of_reach_is_queue_unavailable(tmp_path: Path) -> None:
    jobs = open_jobs(Settings(tmp_path, redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    for attempt in (jobs.enqueue_gc, lambda: jobs.known("x"), lambda: jobs.result("x"), jobs.waiting):
        with pytest.raises(QueueUnavailable) as raised:
            attempt()
        assert raised.value.status == 503 and "job queue is unavailable" in str(raised.value)


# ---- where each library may be seen at all --------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
# Each foreign library, and the one place its errors are translated (tracker/cli/mist_worker.py runs huey's
# consumer, which handles its own storage's errors; it catches none).
BOUNDARIES = {
    "sqlalchemy": ("tracker/db/",), "alembic": ("tracker/db/",), "redis": ("tracker/jobs/queue.py",),
    "huey": ("tracker/jobs/queue.py",), "boto3": ("shared/s3_store.py",), "botocore": ("shared/s3_store.py",),
}
HANDLES = {"huey": ("tracker/jobs/queue.py", "tracker/cli/mist_worker.py")}  # attributes that hand out the library


def crossings(path: str, source: str) -> list[str]:
    """Where a module outside a library's boundary imports it, or reaches through to it by attribute."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        for name in names:
            library = name.split(".")[0]
            if library in BOUNDARIES and not path.startswith(BOUNDARIES[library]):
                found.append(f"{path}:{node.lineno} imports {name}")
        if isinstance(node, ast.Attribute) and node.attr in HANDLES and not path.startswith(HANDLES[node.attr]):
            found.append(f"{path}:{node.lineno} reaches .{node.attr}")
    return found


def test_no_library_is_imported_or_reached_outside_its_boundary() -> None:
    found = []
    for package in ("shared", "client", "tracker", "seeder", "mistpipe"):
        for file in sorted((ROOT / package).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            found += crossings(path, file.read_text(encoding="utf-8"))
    assert found == []


def held(module: ModuleType) -> list[str]:
    """A library's exception classes (alone or in a tuple) that a module outside its boundary holds by a name."""
    found = []
    path = module.__name__.replace(".", "/") + ".py"
    for attr, value in vars(module).items():
        for one in value if isinstance(value, tuple) else (value,):
            library = (getattr(one, "__module__", "") or "").split(".")[0]
            if (isinstance(one, type) and issubclass(one, BaseException) and library in BOUNDARIES
                    and not path.startswith(BOUNDARIES[library])):
                found.append(f"{module.__name__}.{attr} holds {one.__module__}.{one.__name__}")
    return found


def test_no_module_outside_a_boundary_holds_that_librarys_errors() -> None:
    """A re-exported exception class (or a tuple of them) lets a layer catch a library's errors without importing it."""
    assert [line for module in modules() for line in held(module)] == []


def test_a_crossing_is_named() -> None:
    """The checks above are only worth having if they fail on what they are for."""
    source = "import redis\nfrom sqlalchemy.exc import OperationalError\n\n\ndef f(ctx):\n    return ctx.jobs.huey.pending()\n"
    assert crossings("tracker/admin/overview.py", source) == [
        "tracker/admin/overview.py:1 imports redis", "tracker/admin/overview.py:2 imports sqlalchemy.exc",
        "tracker/admin/overview.py:6 reaches .huey"]
    assert crossings("tracker/db/queries.py", "from sqlalchemy.exc import OperationalError\n") == []
    leaky = ModuleType("tracker.sessions")
    leaky.ANY_DATABASE_ERROR = (QueueUnavailable, OperationalError)  # type: ignore[attr-defined]
    assert held(leaky) == ["tracker.sessions.ANY_DATABASE_ERROR holds sqlalchemy.exc.OperationalError"]
