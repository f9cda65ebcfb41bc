"""uvicorn, configured for the API: its fast parser, with JSON even for unparseable requests."""

from __future__ import annotations

import json

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from services.api.middleware import MAX_PATH


class JsonErrorsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, but a request it cannot parse (a request line of
    megabytes, bad bytes) is answered with the API's JSON error body, not plain text."""

    def send_400_response(self, msg: str) -> None:
        if len(getattr(self, "url", b"")) > MAX_PATH:
            status, code, detail = 414, "uri_too_long", "path or query too long"
        else:
            status, code, detail = 400, "bad_request", "malformed HTTP request"
        body = json.dumps({"code": code, "detail": detail}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()


def config(app: FastAPI, *, host: str, port: int) -> uvicorn.Config:
    """The server settings the CLI, the demo and the tests all use."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=JsonErrorsProtocol,
        loop="auto",  # uvloop when installed
        log_config=None,  # keep the project's logging setup
        access_log=False,  # /metrics counts requests; a line per request is noise at 500/s
        timeout_graceful_shutdown=5,
    )
