"""checkov over terraform/ and docker/ (offline) and hadolint over the Dockerfiles: no failed
check, and every check skipped has its reason written beside the resource."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from tests.deploy.tools import BIN, DOCKER, ROOT, TERRAFORM, checkov

pytestmark = pytest.mark.slow

DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "Dockerfile.lambda"]
SKIP_COMMENT = re.compile(r"checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")


@pytest.fixture(scope="module")
def checkov_reports() -> list[dict[str, Any]]:
    """One offline checkov run over both folders: its JSON reports, one per framework."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "PRISMA_"))}
    done = subprocess.run(
        [str(checkov()), "--compact", "--output", "json", "--skip-download",
         "--download-external-modules", "false",
         "--framework", "terraform", "dockerfile",
         "--directory", str(TERRAFORM), "--directory", str(DOCKER)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr[-3000:]
    return _json_documents(done.stdout)


def _json_documents(text: str) -> list[dict[str, Any]]:
    """checkov prints one JSON document per folder scanned: each a report or a list of them."""
    decoder = json.JSONDecoder()
    reports: list[dict[str, Any]] = []
    at = 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        doc, at = decoder.raw_decode(text, at)
        reports.extend(doc if isinstance(doc, list) else [doc])
    return reports


def test_checkov_scanned_both_frameworks(checkov_reports: list[dict[str, Any]]) -> None:
    passed: dict[str, int] = {}
    for r in checkov_reports:
        passed[r["check_type"]] = passed.get(r["check_type"], 0) + r["summary"]["passed"]
    assert passed.get("terraform", 0) > 300 and passed.get("dockerfile", 0) > 50, passed


def test_checkov_finds_no_failed_check(checkov_reports: list[dict[str, Any]]) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in checkov_reports
        for c in r["results"]["failed_checks"]
    ]
    assert failed == []


def test_every_skipped_check_says_why(checkov_reports: list[dict[str, Any]]) -> None:
    skipped = [c for r in checkov_reports for c in r["results"]["skipped_checks"]]
    assert skipped, "expected the documented skips to be seen by checkov"
    for check in skipped:
        reason = (check.get("check_result", {}).get("suppress_comment") or "").strip()
        assert len(reason) >= 20, f"{check['check_id']} on {check['resource']}: no reason"


def test_every_skip_comment_in_the_sources_has_a_reason() -> None:
    files = [*TERRAFORM.glob("*.tf"), *DOCKERFILES]
    found = 0
    for path in files:
        for match in SKIP_COMMENT.finditer(path.read_text()):
            found += 1
            reason = (match.group(2) or "").strip()
            assert len(reason) >= 20, f"{path.name}: {match.group(1)} has no written reason"
    assert found > 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: os.PathLike[str]) -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(dockerfile)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
