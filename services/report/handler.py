"""AWS Lambda entrypoint: one report per scheduled invocation."""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path
from typing import Any

from services.common import logs
from services.common.config import Settings
from services.report.job import run

log = logging.getLogger(__name__)

# A Lambda's file system is read-only outside /tmp.
LAMBDA_SCRATCH = Path("/tmp/deloton")


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """Make and send one report and return its result.

    The event may carry `date` (YYYY-MM-DD; default yesterday in REPORT_TIMEZONE), `to` (a
    list of addresses overriding REPORT_RECIPIENTS) and `resend` (true to send a date again).
    """
    logs.setup("INFO", json=True)
    settings = Settings()
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        settings = settings.model_copy(
            update={
                "report_dir": LAMBDA_SCRATCH / "reports",
                "email_outbox_dir": LAMBDA_SCRATCH / "outbox",
            }
        )
    event = event or {}
    raw_date = event.get("date")
    result = run(
        settings,
        day=date.fromisoformat(raw_date) if raw_date else None,
        recipients=list(event.get("to") or []) or None,
        resend=bool(event.get("resend", False)),
    ).as_dict()
    request_id = getattr(context, "aws_request_id", None)
    log.info("report %s", result["status"], extra={"result": result, "request_id": request_id})
    return result
