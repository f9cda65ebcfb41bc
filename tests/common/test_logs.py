"""Log lines: the reason a service gives travels in its `extra=` fields, in both formats."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from services.common import logs


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("as_json", [True, False])
def test_extra_fields_are_in_the_line(
    as_json: bool, restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Compress and quality give why a run failed as extra fields (error, where); plain logs,
    # which the demo and the soak ask for, printed the message alone.
    logs.setup("INFO", json=as_json)
    logging.getLogger("services.compress.cli").error(
        "compress run failed; retrying in %d s", 60,
        extra={"error": "08006: connection lost", "where": '  File "job.py", line 1'},
    )  # fmt: skip
    line = capsys.readouterr().err
    if as_json:
        record = json.loads(line)
        assert record["error"] == "08006: connection lost" and "job.py" in record["where"]
    else:
        assert "compress run failed; retrying in 60 s" in line
        assert "error=08006: connection lost" in line and 'where=  File "job.py"' in line
