"""What compose, the images and Terraform run exists: every command is a `deloton` subcommand,
and every environment variable they set is a field of the one Settings class (a misspelt
name would be silently ignored by pydantic-settings)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from services.cli import build_parser
from services.common.config import Settings
from tests.deploy.hcl import load
from tests.deploy.tools import DOCKER

# Services whose command and settings arrive with their own branches (api, dashboard, report);
# strict xfail turns into a failure the day they pass: then drop them from this set.
PENDING: set[str] = set()
# Not Settings: the interpreter's and libraries' own variables.
RUNTIME_VARIABLES = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR",
                     "PIP_DISABLE_PIP_VERSION_CHECK", "MPLCONFIGDIR"}  # fmt: skip
APP_IMAGE = "deloton:local"


def _pending(name: str) -> Any:
    return pytest.param(
        name,
        marks=pytest.mark.xfail(
            name in PENDING,
            reason=f"`deloton {name}` and its settings arrive with their own branch",
            strict=True,
        ),
    )


def settings_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def cli_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def app_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if s.get("image") == APP_IMAGE}


def _unknown(names: set[str]) -> set[str]:
    return names - settings_names() - RUNTIME_VARIABLES


# --- compose ------------------------------------------------------------------------------------


def test_compose_runs_kafka_in_kraft_mode_postgres_migrate_every_service_and_prometheus() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:") and not kafka["image"].endswith(":latest")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(app_services()) >= {"migrate", "ingest", "alerts", "compress", "api", "dashboard",
                                   "report", "simulator"}  # fmt: skip
    for name, svc in app_services().items():
        if name in {"migrate", "simulator"}:
            continue
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert svc["environment"]["AUTO_MIGRATE"] == "false", name
    assert services["prometheus"]["image"].startswith("prom/prometheus:")


def test_prometheus_scrapes_every_metrics_port_compose_opens() -> None:
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}  # fmt: skip
    ports = {"INGEST_METRICS_PORT": "ingest", "ALERTS_METRICS_PORT": "alerts",
             "API_PORT": "api", "DASHBOARD_PORT": "dashboard"}  # fmt: skip
    expected = {f"{svc}:{app_services()[svc]['environment'][var]}" for var, svc in ports.items()}
    assert expected <= targets


@pytest.mark.parametrize("name", [_pending(n) for n in sorted(app_services())])
def test_each_compose_service_is_a_cli_command_with_known_settings(name: str) -> None:
    svc = app_services()[name]
    assert svc["command"][0] in cli_commands()
    assert _unknown(set(svc["environment"])) == set()


# --- the images ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.lambda"])
def test_image_environment_variables_are_settings(dockerfile: str) -> None:
    text = (DOCKER / dockerfile).read_text().replace("\\\n", " ")
    names = set()
    for line in text.splitlines():
        if line.startswith("ENV "):
            names |= set(re.findall(r"([A-Z][A-Z0-9_]*)=", line))
    assert names and _unknown(names) == set()


def test_the_service_image_is_slim_pinned_non_root_with_a_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(bases) == 2 and len(set(bases)) == 1
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", bases[0])
    final = text.split(" AS runtime", 1)[1]
    assert re.search(r"^USER 10001", final, re.M)
    assert "HEALTHCHECK" in final and "services.common.healthcheck" in final
    # No compiler or package manager run in the final stage: it copies the built virtualenv.
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final)
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert 'ENTRYPOINT ["deloton"]' in final


def test_the_lambda_image_uses_the_aws_base_and_the_real_handler() -> None:
    text = (DOCKER / "Dockerfile.lambda").read_text()
    bases = set(re.findall(r"^FROM (\S+)", text, re.M))
    assert len(bases) == 1 and next(iter(bases)).startswith("public.ecr.aws/lambda/python:3.11.")
    from services.compress.handler import handler

    assert callable(handler)
    assert 'CMD ["services.compress.handler.handler"]' in text


# --- Terraform ------------------------------------------------------------------------------------


def test_terraform_common_environment_is_settings() -> None:
    config = load()
    for env in (config.locals["common_environment"], config.locals["job_common_environment"],
                config.locals["common_secrets"]):  # fmt: skip
        assert _unknown(set(env)) == set()


@pytest.mark.parametrize("name", [_pending(n) for n in sorted(load().locals["services"])])
def test_each_ecs_service_is_a_cli_command_with_known_settings(name: str) -> None:
    config = load()
    assert config.locals["services"][name]["command"][0] in cli_commands()
    assert _unknown(set(config.locals["service_environment"][name])) == set()


@pytest.mark.parametrize("name", [_pending(n) for n in sorted(load().locals["jobs"])])
def test_each_lambda_job_has_its_handler_and_known_settings(name: str) -> None:
    import importlib

    config = load()
    module, _, function = config.locals["jobs"][name]["handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))
    assert _unknown(set(config.locals["job_environment"][name])) == set()
