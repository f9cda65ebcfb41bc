"""Monitoring: every metric the Grafana dashboard and the Prometheus rules use is exported by
a service; the dashboard, rules and scrape config are wired into the compose file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

from tests.deploy.tools import DOCKER

DASHBOARD = DOCKER / "grafana" / "dashboards" / "deloton.json"
RULES = DOCKER / "prometheus-rules.yml"
METRIC = re.compile(r"\b(deloton_[a-z0-9_]+)\b")
# Each series name a family of a type exports (prometheus_client's exposition).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported(*registries: CollectorRegistry) -> set[str]:
    """Every series name the registries export."""
    names = set()
    for registry in registries:
        for family in registry.collect():
            names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


@pytest.fixture(scope="module")
def service_metrics() -> set[str]:
    """The metrics of every service, registered as each service registers them: ingest,
    alerts, compress, quality and the dashboard in the process registry, the API in the
    registry of its app."""
    import services.alerts.metrics
    import services.compress.metrics
    import services.dashboard.recent
    import services.ingest.metrics
    import services.quality.metrics  # noqa: F401
    from services.api.middleware import Metrics

    return exported(REGISTRY, Metrics().registry)


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_every_metric_the_dashboard_and_the_rules_use_is_exported(
    service_metrics: set[str],
) -> None:
    used = {name for e in dashboard_exprs() + [r["expr"] for r in rules()]
            for name in METRIC.findall(e)}  # fmt: skip
    assert len(used) >= 15
    assert used - service_metrics == set()


def test_the_dashboard_covers_what_operators_watch() -> None:
    titles = " ".join(p["title"].lower() for p in dashboard()["panels"])
    for topic in (
        "ingest rate",
        "ingest lag",
        "rejected lines by reason",
        "batch write latency",
        "alerts raised, sent, expired",
        "api latency by route",
        "compress duration",
    ):
        assert topic in titles, topic  # fmt: skip
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    assert all(p["targets"] and p["datasource"]["uid"] == "deloton-prometheus" for p in panels)
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_the_rules_alert_on_ingest_lag_alert_expiries_and_api_5xx() -> None:
    by_name = {r["alert"]: r for r in rules()}
    assert "deloton_ingest_lag_messages" in by_name["DelotonIngestLagging"]["expr"]
    assert "deloton_alerts_expired_total" in by_name["DelotonAlertEmailsExpiring"]["expr"]
    assert 'status=~"5.."' in by_name["DelotonApiServerErrors"]["expr"]
    assert all(r["labels"]["severity"] and r["annotations"]["summary"] for r in rules())


def test_compose_wires_prometheus_rules_and_grafana() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    mounted = dict(v.split(":")[:2] for v in compose["prometheus"]["volumes"])
    assert mounted["./prometheus-rules.yml"] in prometheus["rule_files"]
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}  # fmt: skip
    assert {"compress:9103", "quality:9104"} <= targets
    assert compose["compress"]["environment"]["COMPRESS_METRICS_PORT"] == "9103"
    assert compose["quality"]["environment"]["QUALITY_METRICS_PORT"] == "9104"
    grafana = compose["grafana"]
    assert not grafana["image"].endswith(":latest")
    volumes = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert DASHBOARD.is_relative_to(DOCKER / "grafana" / "dashboards")
    source = yaml.safe_load(
        (DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert source["uid"] == "deloton-prometheus" and source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/deloton.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == volumes["./grafana/dashboards"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
