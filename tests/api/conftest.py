"""A live API (uvicorn on a free loopback port) over a fresh database, keys, test data."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from psycopg.rows import dict_row
from pydantic import SecretStr

from services.api import keys
from services.api.main import create_app
from services.api.server import config
from services.common import infra
from services.common.config import Settings
from tests.common.conftest import compress_settings, conn  # noqa: F401  (shared fixtures)

SCOPE_SETS = ("read", "read,pii", "read,admin", "read,pii,admin")


@dataclass
class LiveApi:
    """A running API: its base URL and a token per scope set."""

    url: str
    tokens: dict[str, str]
    settings: Settings

    def client(self, scopes: str | None = "read") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[scopes]}"} if scopes else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def make_key(dsn: str, name: str, scopes: str) -> str:
    """A new key in the database at `dsn`; returns its token."""
    with psycopg.connect(dsn, row_factory=dict_row) as writer:
        return keys.create(writer, name=name, scopes=scopes)


@contextlib.contextmanager
def serving(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """uvicorn with the app (by default one made from `settings`) in a thread of this
    process; yields its base URL."""
    port = infra.free_port()
    app = app if app is not None else create_app(settings)
    server = uvicorn.Server(config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def api_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": SecretStr(database_url),
        "api_pool_size": 4,
        "api_key_cache_s": 0.0,  # tests revoke keys and expect it at once
        "api_rate_limit_per_s": 0.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def live_api(database_url: str) -> Iterator[LiveApi]:
    """The API over this test's database, with a key for each scope set."""
    tokens = {s: make_key(database_url, f"key-{s}", s) for s in SCOPE_SETS}
    settings = api_settings(database_url)
    with serving(settings) as url:
        yield LiveApi(url, tokens, settings)
