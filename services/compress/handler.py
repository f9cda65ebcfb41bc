"""AWS Lambda entrypoint: one compress run per scheduled invocation."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from services.common import logs
from services.common.config import Settings
from services.compress.job import run

log = logging.getLogger(__name__)


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """Run compress once (`event["now"]`, ISO, overrides the clock) and return its result.

    Logs are JSON lines on stderr, which CloudWatch Logs stores one event per line.
    """
    logs.setup("INFO", json=True)
    settings = Settings()
    raw_now = (event or {}).get("now")
    now = datetime.fromisoformat(raw_now) if raw_now else None
    result = run(settings, now=now).as_dict()
    request_id = getattr(context, "aws_request_id", None)
    log.info("compress %s", result["status"], extra={"result": result, "request_id": request_id})
    return result
