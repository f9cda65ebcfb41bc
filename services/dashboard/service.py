"""Run the dashboard: the events feed, the read pool, the Dash app under waitress."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from services.common.config import ConfigError, Settings
from services.common.pool import open_pool
from services.dashboard.app import Context, create_app
from services.dashboard.live import Feed, make_fleet
from services.dashboard.recent import Aggregates

log = logging.getLogger(__name__)


@contextmanager
def running(settings: Settings) -> Iterator[Context]:
    """The feed and the pool for the duration of the block; yields the pages' context."""
    pool = open_pool(settings.require_database(), max_size=4, application_name="deloton-dashboard")
    fleet = make_fleet(settings)
    feed = Feed(settings, fleet)
    try:
        feed.start()
        aggregates = Aggregates(
            pool,
            window_h=settings.dashboard_recent_hours,
            bucket_min=settings.dashboard_bucket_minutes,
            ttl_s=settings.dashboard_cache_s,
        )
        yield Context(settings, fleet, aggregates, feed_alive=feed.thread.is_alive)
    finally:
        feed.stop()
        pool.close()


def run(settings: Settings) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code."""
    from waitress.server import create_server

    from services.common.signals import sigterm_as_interrupt

    with running(settings) as ctx:
        app = create_app(ctx)
        try:
            server = create_server(
                app.server,
                host=settings.dashboard_host,
                port=settings.dashboard_port,
                threads=settings.dashboard_threads,
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {settings.dashboard_host}:{settings.dashboard_port}: "
                f"{exc.strerror} (set DASHBOARD_PORT)"
            ) from exc
        url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/"
        log.info("dashboard serving", extra={"url": url})
        print(f"dashboard: {url}", flush=True)
        sigterm_as_interrupt()
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return 0
