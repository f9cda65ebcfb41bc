"""`deloton api` (serve the REST API) and `deloton api-key create|revoke|list`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.common.config import ConfigError, Settings


def register(subparsers: Any) -> None:
    """Add the `api` and `api-key` subcommands."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "api",
        help="serve the REST API (FastAPI + uvicorn)",
        description="Serve the analysts' REST API on API_HOST:API_PORT. /docs has every "
        "route; send a key from `deloton api-key create` as `Authorization: Bearer <key>`.",
    )
    p.add_argument("--host", help="address to listen on (API_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (API_PORT, 8000; 0 picks a free one)")
    p.add_argument(
        "--workers", type=int, help="uvicorn worker processes (API_WORKERS, 1)", metavar="N"
    )
    p.set_defaults(func=serve)

    k: argparse.ArgumentParser = subparsers.add_parser(
        "api-key", help="create, revoke or list API keys", description="Manage API keys."
    )
    ks = k.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = ks.add_parser("create", help="create a key and print its token (shown once)")
    c.add_argument("--name", required=True, help="a unique name for the key (who holds it)")
    c.add_argument(
        "--scopes", default="read", help="comma-separated: read[,pii][,admin] (default: read)"
    )
    c.set_defaults(func=create)
    r = ks.add_parser("revoke", help="revoke a key by name")
    r.add_argument("name")
    r.set_defaults(func=revoke)
    ls = ks.add_parser("list", help="list keys (names, scopes, dates; never tokens)")
    ls.set_defaults(func=list_keys)


def serve(args: argparse.Namespace) -> int:
    """Run uvicorn with the app until Ctrl-C or SIGTERM; 0 after either graceful stop."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from services.api.main import create_app
    from services.api.server import APP_FACTORY, config
    from services.common.signals import sigterm_as_interrupt

    settings = Settings()
    settings.require_database()
    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    workers = args.workers or settings.api_workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    # uvicorn re-raises Ctrl-C after its graceful shutdown: that is a normal stop.
    sigterm_as_interrupt()
    with contextlib.suppress(KeyboardInterrupt):
        if workers == 1:
            uvicorn.Server(config(create_app(settings), host=host, port=port)).run()
        else:
            # Each worker reads the same environment; rate limits and key caches are per
            # worker process.
            cfg = config(APP_FACTORY, host=host, port=port, workers=workers)
            Multiprocess(cfg, sockets=[cfg.bind_socket()]).run()
    return 0


def _write(fn: Any, **kwargs: Any) -> Any:
    settings = Settings()
    try:
        with psycopg.connect(
            settings.require_database(), connect_timeout=10, row_factory=dict_row
        ) as conn:
            return fn(conn, **kwargs)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to PostgreSQL: {exc.__class__.__name__}") from exc
    except psycopg.errors.UndefinedTable:
        raise ConfigError("the API tables are missing: run `deloton migrate`") from None


def create(args: argparse.Namespace) -> int:
    from services.api import keys

    token = _write(keys.create, name=args.name, scopes=args.scopes)
    print(token)
    print(f"key {args.name!r} created; the token above is shown only once", file=sys.stderr)
    return 0


def revoke(args: argparse.Namespace) -> int:
    from services.api import keys

    _write(keys.revoke, name=args.name)
    print(f"key {args.name!r} revoked", file=sys.stderr)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    from services.api import keys

    records = _write(keys.listing)
    print(f"{'NAME':<24} {'PREFIX':<11} {'SCOPES':<16} {'CREATED':<20} REVOKED")
    for k in records:
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "-"
        print(
            f"{k.name:<24} {k.prefix:<11} {','.join(k.scopes):<16} "
            f"{k.created_at:%Y-%m-%d %H:%M:%S}  {revoked}"
        )
    return 0
