"""Fixtures shared with the API tests: a writing connection and a live API with keys."""

from tests.api.conftest import live_api  # noqa: F401
from tests.common.conftest import conn  # noqa: F401
