"""Daily -> historical roll-up and retention (`deloton compress`, or the Lambda `handler`)."""

from services.compress.handler import handler
from services.compress.job import CompressResult, run

__all__ = ["CompressResult", "handler", "run"]
