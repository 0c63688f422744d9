"""Prometheus metrics (prometheus_client lives only here): a registry per server process and `GET /metrics`.

A process keeps its counters in memory, or, once `use_directory` was called
(the seeder does, so that several seeder processes sharing one port add up),
in one memory-mapped file per process in that directory; a scrape of any of
those processes then sums every process's files. The directory is given, not
put in PROMETHEUS_MULTIPROC_DIR: prometheus_client's own file-backed values
read that variable, so `_FileValues` below are ours, over its file format. Values that are true at
scrape time rather than counted (who is online, jobs waiting) are read then,
through `Registry.read_at_scrape`.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["Counter", "Histogram", "Reading", "Registry", "HttpMetrics", "METRICS", "use_directory", "metrics_route"]

TOKEN_ENV = "MIST_METRICS_TOKEN"  # when set, /metrics wants `Authorization: Bearer <token>` (shared/service/settings.py)
# Seconds; a chunk pack of 4 MiB read from a slow disk may take a few.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
disable_created_metrics()  # a `_created` series beside every counter doubles the scrape for nothing we use


def use_directory(path: Path, empty: bool = True) -> Path:
    """From now on this process (and the processes it starts) count in files under `path`, summed on scrape.

    Call it before any metric exists. `empty` removes the files of an earlier run: the process that
    starts a group of seeder processes does it once, before starting them, so counters begin at 0
    as after any restart (Prometheus takes that as a counter reset).
    """
    global _directory
    path.mkdir(parents=True, exist_ok=True)
    if empty:
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    values.ValueClass = _file_values(path)  # what every metric made from now on keeps its value in
    _directory = path
    return path


_directory: Path | None = None


def counting_directory() -> Path | None:
    """The directory this process counts in, if `use_directory` set one."""
    return _directory


def _file_values(directory: Path) -> type:
    """prometheus_client's per-process files (`counter_<pid>.db`, `histogram_<pid>.db`) in `directory`, as its
    MultiProcessCollector reads them; opened again under a new pid after a fork, as its own values do."""
    files: dict[str, MmapedDict] = {}
    made: list[Any] = []
    pid = [os.getpid()]
    lock = threading.Lock()

    class _FileValues:
        _multiprocess = True

        def __init__(
            self,
            typ: str,
            metric_name: str,
            name: str,
            labelnames: Iterable[str],
            labelvalues: Iterable[str],
            help_text: str,
            multiprocess_mode: str = "",
            **_kwargs: object,
        ) -> None:
            self._params = typ, metric_name, name, labelnames, labelvalues, help_text, multiprocess_mode
            with lock:
                self._after_fork()
                self._open()
                made.append(self)

        def _open(self) -> None:
            typ, metric_name, name, labelnames, labelvalues, help_text, mode = self._params
            prefix = f"{typ}_{mode}" if typ == "gauge" else typ
            if prefix not in files:
                files[prefix] = MmapedDict(str(directory / f"{prefix}_{pid[0]}.db"))
            self._file = files[prefix]
            self._key = mmap_key(metric_name, name, list(labelnames), list(labelvalues), help_text)
            self._value, self._timestamp = self._file.read_value(self._key)

        def _after_fork(self) -> None:
            if pid[0] != os.getpid():
                pid[0] = os.getpid()
                for old in files.values():
                    old.close()
                files.clear()
                for value in made:
                    value._open()

        def inc(self, amount: float) -> None:
            with lock:
                self._after_fork()
                self._value += amount
                self._file.write_value(self._key, self._value, 0.0)

        def set(self, value: float, timestamp: float | None = None) -> None:
            with lock:
                self._after_fork()
                self._value = value
                self._file.write_value(self._key, self._value, timestamp or 0.0)

        def get(self) -> float:
            with lock:
                self._after_fork()
                return float(self._value)

        def set_exemplar(self, _exemplar: object) -> None:
            return None  # exemplars are not kept in the files

        def get_exemplar(self) -> None:
            return None

    return _FileValues


@dataclass(frozen=True)
class Reading:
    """One value known only at scrape time: a gauge, or a counter kept elsewhere (the job queue's storage)."""

    name: str
    doc: str
    value: float
    kind: str = "gauge"  # or "counter"
    labels: tuple[tuple[str, str], ...] = ()


class _AtScrape:
    """A prometheus_client collector that asks `read` for its values at every scrape."""

    def __init__(self, read: Callable[[], Iterable[Reading]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for r in self.read():
            names = [k for k, _ in r.labels]
            if r.name not in families:
                kind = CounterMetricFamily if r.kind == "counter" else GaugeMetricFamily
                families[r.name] = kind(r.name, r.doc, labels=names)
            families[r.name].add_metric([v for _, v in r.labels], r.value)  # type: ignore[attr-defined]  # both families have add_metric; their common base does not say so
        yield from families.values()

    def describe(self) -> list[Metric]:
        return []  # read only at scrape: registering must not call `read`


@dataclass
class Registry:
    """The metrics one server process exposes; in a counting directory, those of every process there."""

    directory: Path | None = field(default_factory=counting_directory)
    _registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        if self.directory is not None:
            MultiProcessCollector(self._registry, path=str(self.directory))
        else:
            ProcessCollector(registry=self._registry)  # CPU, memory, open files: per process, so only when alone

    def __repr__(self) -> str:
        return f"Registry(directory={str(self.directory) if self.directory else None!r})"

    def _home(self) -> CollectorRegistry | None:
        return None if self.directory is not None else self._registry  # in a directory, the files are the registry

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self._home())

    def histogram(
        self, name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        return Histogram(name, doc, labels, registry=self._home(), buckets=buckets)

    def read_at_scrape(self, read: Callable[[], Iterable[Reading]]) -> None:
        """Values this process alone knows (it must be the only process with them: the tracker's)."""
        self._registry.register(_AtScrape(read))

    def exposition(self) -> bytes:
        """Every metric in Prometheus's text format (blocking: readers and counting files are read here)."""
        return generate_latest(self._registry)


@dataclass
class HttpMetrics:
    """Requests by route, method and status, their latency, and the response bytes, for one HTTP service."""

    requests: Counter
    seconds: Histogram
    response_bytes: Counter

    @classmethod
    def on(cls, registry: Registry) -> "HttpMetrics":
        return cls(
            registry.counter(
                "mist_http_requests",
                "HTTP requests answered, by route template, method and status",
                ("route", "method", "status"),
            ),
            registry.histogram(
                "mist_http_request_duration_seconds",
                "Time from a request's arrival to its answer being ready (sending not included)",
                ("route", "method"),
            ),
            registry.counter(
                "mist_http_response_bytes", "Bytes of response bodies, as the handlers made them", ("route", "method")
            ),
        )

    def observe(self, route: str, method: str, status: int, size: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.seconds.labels(route, method).observe(seconds)
        if size:
            self.response_bytes.labels(route, method).inc(size)


METRICS = web.AppKey("metrics", Registry)


def _authorized(request: web.Request, token: str) -> bool:
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def metrics_route(token: str = "") -> web.RouteDef:
    """GET /metrics: open unless the service's settings hold a token (MIST_METRICS_TOKEN; see docs/DECISIONS.md,
    Observability)."""

    async def serve_metrics(request: web.Request) -> web.Response:
        if not _authorized(request, token):
            return web.json_response(
                {"error": f"/metrics needs `Authorization: Bearer <{TOKEN_ENV}>`", "detail": None},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await asyncio.to_thread(request.app[METRICS].exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return web.get("/metrics", serve_metrics)
