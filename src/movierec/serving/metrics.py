"""Prometheus metrics (prometheus_client, a registry per app).

Requests and latency per route template and status, cache hits and misses (and their
ratio), store write latency, reloads, and the served models' versions.

With several workers (``movierec serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR``),
requests, latency and store writes are summed over all workers, whichever one answers
the scrape; the engine's figures (cache, loads, models) are the answering worker's and
carry its ``worker`` (pid) label.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _EngineCollector:
    """Reads the engine's counters at scrape time (no bookkeeping on the request path)."""

    def __init__(self, engine: Any, worker: bool = False) -> None:
        self.engine = engine
        #: label the figures with this process's pid (one of several workers)
        self.worker = [str(os.getpid())] if worker else []

    def collect(self) -> Iterator[Metric]:
        c, w = self.engine.cache, self.worker
        labels = ["worker"] if w else []
        hits = CounterMetricFamily(
            "movierec_cache_hits", "Recommendation cache hits", labels=labels
        )
        hits.add_metric(w, c.hits)
        miss = CounterMetricFamily(
            "movierec_cache_misses", "Recommendation cache misses", labels=labels
        )
        miss.add_metric(w, c.misses)
        ratio = GaugeMetricFamily("movierec_cache_hit_ratio", "Cache hits / lookups", labels=labels)
        total = c.hits + c.misses
        ratio.add_metric(w, c.hits / total if total else 0.0)
        size = GaugeMetricFamily("movierec_cache_entries", "Entries in the cache", labels=labels)
        size.add_metric(w, len(c))
        reloads = CounterMetricFamily(
            "movierec_model_loads", "Successful model loads", labels=labels
        )
        reloads.add_metric(w, self.engine.reloads)
        info = GaugeMetricFamily(
            "movierec_model_info",
            "Served models (1 = loaded; 'default' marks the default)",
            labels=[*labels, "label", "class", "version", "default"],
        )
        st = self.engine._state
        if st is not None:
            for s in st.models.values():
                info.add_metric(
                    [*w, s.label, type(s.model).__name__, s.version, str(s.label == st.default)],
                    1,
                )
        ready = GaugeMetricFamily("movierec_ready", "1 when a model is loaded", labels=labels)
        ready.add_metric(w, 1.0 if st is not None else 0.0)
        yield from (hits, miss, ratio, size, reloads, info, ready)


class Metrics:
    """The app's instruments on their own registry."""

    def __init__(self, engine: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "movierec_requests",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "movierec_request_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=_LATENCY,
            registry=self.registry,
        )
        self.store_write = Histogram(
            "movierec_store_write_seconds",
            "Feedback store write latency",
            buckets=_LATENCY,
            registry=self.registry,
        )
        #: several workers: their counters live in files under this folder
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._engine = _EngineCollector(engine, worker=self.multiprocess)
        self.registry.register(self._engine)  # type: ignore[arg-type]
        engine.on_store_write = self.store_write.observe

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        every = CollectorRegistry()
        multiprocess.MultiProcessCollector(every)  # all workers' requests and latency
        mine = CollectorRegistry()
        mine.register(self._engine)  # type: ignore[arg-type]
        return generate_latest(every) + generate_latest(mine)


def now() -> float:
    return time.perf_counter()
