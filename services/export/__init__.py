"""`deloton export`: readings or aggregates to CSV or Parquet, streamed with flat memory."""

from services.export.job import export

__all__ = ["export"]
