"""Fixtures for export: a fresh database of the test's own, no broker needed."""

from tests.common.conftest import compress_settings, conn  # noqa: F401  (shared fixtures)
