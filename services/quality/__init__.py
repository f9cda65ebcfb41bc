"""Fleet health: per-bike data quality from readings and rejects, incidents and ops emails."""
