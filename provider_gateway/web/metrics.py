"""Prometheus metrics: one registry per app (several apps share a process in tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from provider_gateway.rate_limits import RateLimiter
from provider_gateway.shared.listings import ListingStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "gateway_http_request_duration_seconds",
            "Time to answer a request",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream = Counter(
            "gateway_upstream_calls",
            "Calls to Slack, Entra and Graph",
            ["provider", "method", "status"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "gateway_upstream_call_duration_seconds",
            "Time of one upstream call",
            ["provider", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.installs = Counter(
            "gateway_oauth_installs",
            "OAuth/admin-consent redirects by outcome",
            ["provider", "outcome"],
            registry=self.registry,
        )

        # Label children by their labels: prometheus_client's labels() validates and locks on
        # every call, a tenth of a cached hit. Routes, methods and statuses are bounded sets.
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._request_series.get((route, method, status))
        if series is None:
            series = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method),
            )
            self._request_series[(route, method, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_upstream(self, provider: str, method: str, status: str, seconds: float) -> None:
        self.upstream.labels(provider, method, status).inc()
        self.upstream_seconds.labels(provider, method).observe(seconds)

    def watch(self, listings: ListingStats, limiter: RateLimiter) -> None:
        self.registry.register(_SharedStateCollector(listings, limiter))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SharedStateCollector(Collector):
    """Reads the cache's and the rate limiter's own counters at scrape time."""

    def __init__(self, listings: ListingStats, limiter: RateLimiter) -> None:
        self._listings = listings
        self._limiter = limiter

    def collect(self) -> Iterator[Metric]:
        cache = CounterMetricFamily(
            "gateway_listing_cache", "Listing cache lookups by result", labels=["result"]
        )
        cache.add_metric(["hit"], self._listings.hits)
        cache.add_metric(["miss"], self._listings.misses)
        cache.add_metric(["single_flight_join"], self._listings.joins)
        yield cache
        limited = CounterMetricFamily("gateway_rate_limited", "Requests refused with 429")
        limited.add_metric([], self._limiter.limited)
        yield limited
