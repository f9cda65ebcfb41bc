"""`python -m services.common.healthcheck [URL]`: the container HEALTHCHECK (standard library only).

Without a URL the probe follows the command the container runs (PID 1's command line): the
HTTP services are asked for their health or metrics page on the port their setting names;
the others (compress --loop, the simulator) are healthy while they run.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from services.common.config import Settings

# subcommand -> (Settings field holding its port, path to ask)
HTTP_PROBES = {
    "ingest": ("ingest_metrics_port", "/metrics"),
    "alerts": ("alerts_metrics_port", "/metrics"),
    "api": ("api_port", "/health"),
    "dashboard": ("dashboard_port", "/health"),
}
OTHER_COMMANDS = {"compress", "simulate", "migrate", "report", "demo", "infra"}


def probe_url(cmdline: list[str], settings: Settings) -> str | None:
    """The URL to ask for this command line; None for a command that serves no HTTP."""
    for arg in cmdline[1:]:
        if arg in OTHER_COMMANDS:
            return None
        if arg in HTTP_PROBES:
            field, path = HTTP_PROBES[arg]
            port = getattr(settings, field, None)
            if not port:
                raise ValueError(f"no port for `{arg}`: {field.upper()} is not set")
            if arg == "api":
                path = settings.api_path_prefix + path
            return f"http://127.0.0.1:{port}{path}"
    raise ValueError(f"not a deloton service: {' '.join(cmdline)!r}")


def check(url: str, timeout: float = 3.0) -> str | None:
    """None when the URL answers 2xx; else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return None if 200 <= resp.status < 300 else f"{url} answered {resp.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def main(argv: list[str]) -> int:
    """Exit 0 when healthy, 1 (with the reason on stderr) when not."""
    if argv:
        url: str | None = argv[0]
    else:
        try:
            cmdline = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
            url = probe_url([a for a in cmdline if a], Settings())
        except (OSError, ValueError) as exc:
            print(f"unhealthy: {exc}", file=sys.stderr)
            return 1
    if url is None:
        return 0
    problem = check(url)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
