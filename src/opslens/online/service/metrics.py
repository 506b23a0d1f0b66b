"""The service's Prometheus metrics (prometheus-client), one registry per app.

- ``opslens_requests_total{analysis, status}``: prediction requests by answer status;
- ``opslens_request_seconds{analysis}``: their latency (a histogram);
- ``opslens_prediction_errors_total{analysis, kind}``: refused requests by kind
  (``client`` for 4xx, ``server`` for 5xx);
- ``opslens_model_info{analysis, recipe, version, alias}`` (1 per loaded model) and
  ``opslens_models_loaded``: read from the model book when scraped.

Example:
    >>> m = ServiceMetrics(lambda: [("eta", "distribution", "3", "champion")])
    >>> m.observe("eta", 200, 0.002)
    >>> text = m.render().decode()
    >>> 'opslens_requests_total{analysis="eta",status="200"} 1.0' in text
    True
    >>> 'opslens_model_info{alias="champion",analysis="eta",recipe="distribution",version="3"} 1.0' in text
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

#: (analysis, recipe, version, alias) of every loaded model
Loaded = Callable[[], Sequence[tuple[str, str, str, str]]]


class _Models(Collector):  # type: ignore[misc]
    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded

    def collect(self) -> Iterator[Metric]:
        rows = list(self.loaded())
        info = GaugeMetricFamily(
            "opslens_model_info",
            "the model version each analysis serves (1 per loaded model)",
            labels=["analysis", "recipe", "version", "alias"],
        )
        for row in rows:
            info.add_metric(list(row), 1.0)
        yield info
        yield GaugeMetricFamily(
            "opslens_models_loaded", "analyses with a model loaded", value=len(rows)
        )


class ServiceMetrics:
    """Request counts, latencies, errors and loaded models of one service."""

    def __init__(self, loaded: Loaded) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "opslens_requests",
            "prediction requests by analysis and answer status",
            ["analysis", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "opslens_request_seconds",
            "prediction request latency in seconds",
            ["analysis"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "opslens_prediction_errors",
            "refused prediction requests (client: 4xx, server: 5xx)",
            ["analysis", "kind"],
            registry=self.registry,
        )
        self.registry.register(_Models(loaded))
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def observe(self, analysis: str, status: int, seconds: float) -> None:
        """Count one prediction request and its latency."""
        children = self._children.get((analysis, status))
        if children is None:  # the labelled series, looked up once per (analysis, status)
            kind = "server" if status >= 500 else "client"
            children = self._children[(analysis, status)] = (
                self.requests.labels(analysis, str(status)),
                self.seconds.labels(analysis),
                self.errors.labels(analysis, kind) if status >= 400 else None,
            )
        requests, latency, errors = children
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))
