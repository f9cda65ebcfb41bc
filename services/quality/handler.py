"""AWS Lambda entrypoint: one fleet health run per scheduled invocation."""

from __future__ import annotations

import logging
from typing import Any

from services.common import logs
from services.common.config import Settings
from services.quality.job import run

log = logging.getLogger(__name__)


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """Run once and return the result (logs are JSON lines for CloudWatch)."""
    logs.setup("INFO", json=True)
    result = run(Settings()).as_dict()
    log.info("quality %s", result["status"], extra={"result": result})
    return result
