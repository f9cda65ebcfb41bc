"""ASGI middleware: path hygiene (length, trailing slash) and Prometheus request metrics."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_response

MAX_PATH = 2048
MAX_QUERY = 4096


class PathHygiene:
    """414 for oversized paths or queries; `/ride/1/` is served as `/ride/1`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > MAX_PATH or len(scope.get("query_string", b"")) > MAX_QUERY:
            response = error_response(414, "uri_too_long", "path or query too long")
            await response(scope, receive, send)
            return
        if len(path) > 1 and path.endswith("/"):
            stripped = trimmed(path)
            # In place: the metrics middleware outside reads the route the router sets here.
            scope["path"] = stripped
            scope["raw_path"] = stripped.encode("utf-8", "replace")
        await self.app(scope, receive, send)


def trimmed(path: str) -> str:
    """The path as it is routed: trailing slashes dropped (`/ride/1/` is `/ride/1`)."""
    return path.rstrip("/") or "/"


class Metrics:
    """Prometheus metrics of one app: requests by route template, method and status; latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "deloton_api_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "deloton_api_request_duration_seconds",
            "Time from request to the end of the response body, by route template",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        # Label lookups cost more than the increments: each (route, method, status) once.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def series(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of a route, method and status."""
        key = (route, method, status)
        found = self._series.get(key)
        if found is None:
            found = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            if len(self._series) < 10_000:  # route templates and methods: few in practice
                self._series[key] = found
        return found

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request answered: counted, and its time in the route's histogram."""
        count, latency = self.series(route, method, status)
        count.inc()
        latency.observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(
                _route_name(scope), scope.get("method", ""), status["code"],
                time.perf_counter() - started,
            )  # fmt: skip


def _route_name(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
