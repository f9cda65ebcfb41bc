"""The hot reads answered at the app's edge, before its middleware stack and router."""

from __future__ import annotations

import inspect
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from services.api.deps import FastPath
from services.api.middleware import MAX_PATH, Metrics, trimmed


class Lane:
    """A route's shortcut: the route's path template, its pattern, and the shortcut."""

    def __init__(self, path: str, shortcut: FastPath) -> None:
        self.path = path
        self.pattern: re.Pattern[str] = compile_path(path)[0]
        self.shortcut = shortcut


class DelotonApi(FastAPI):
    """FastAPI, with the hot reads taken at the door.

    A `GET` of a route given a shortcut (`/ride/{id}`, `/rider/{id}`) without a query string,
    most of the API's traffic, goes straight to the route's shortcut: it checks the id (only a
    plainly valid one), the key (401, 429, 403 as ApiError), runs the route's own body and
    serialises its response model. Everything else, and any request the shortcut declines
    (it returns None), goes through the whole app as before. The middleware layers and the
    router's match it skips were about a fifth of such a request's CPU; what they did for it
    is done here too: a trailing slash is ignored and an oversized path left to the 414, the
    request is counted and timed under its route template in /metrics, and an exception
    becomes the response the app's exception handlers make of it. The answers are the same
    bytes as the whole app's (tests compare them).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lanes: list[Lane] = []

    def shortcut(self, path: str, shortcut: FastPath) -> None:
        """Answer plain GETs of the route at `path` (its template, prefix included) first
        through `shortcut`."""
        self.lanes.append(Lane(path, shortcut))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope.get("query_string")
            and not scope.get("root_path")
            and len(path := scope["path"]) <= MAX_PATH
        ):
            path = trimmed(path)
            for lane in self.lanes:
                if (match := lane.pattern.match(path)) is not None:
                    if await self._serve(lane, match.groupdict(), scope, receive, send):
                        return
                    break
        await super().__call__(scope, receive, send)

    async def _serve(
        self, lane: Lane, params: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Answer through the lane's shortcut; False (nothing sent) if it declines."""
        started = time.perf_counter()
        scope["app"] = self
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            response = await lane.shortcut(request)
        except Exception as exc:  # each becomes what the app's exception handlers make of it
            response = await self._handled(request, exc)
        if response is None:
            del scope["path_params"]
            return False
        metrics: Metrics = self.state.metrics
        try:
            await response(scope, receive, send)
        finally:
            metrics.observe(lane.path, "GET", response.status_code, time.perf_counter() - started)
        return True

    async def _handled(self, request: Request, exc: Exception) -> Response:
        for kind in type(exc).__mro__:
            handler = self.exception_handlers.get(kind)
            if handler is not None:
                answer = handler(request, exc)
                return await answer if inspect.isawaitable(answer) else answer
        raise exc
