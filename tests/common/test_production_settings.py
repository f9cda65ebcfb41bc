"""The settings production adds: the database password from Secrets Manager, Kafka over
SASL/SSL, and the container health probe."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg2
import pytest
from pydantic import SecretStr

from services.alerts.app import faust_credentials
from services.common.config import ConfigError, Settings
from services.common.healthcheck import probe_url
from services.common.kafka import consumer_config, producer_config
from tests.alerts.support import running_moto

URL = "postgresql://deloton_app@db.internal:5432/deloton?sslmode=verify-full"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_password_setting_joins_the_url_without_losing_its_options() -> None:
    dsn = _settings(database_url=URL, database_password="s3cr:t @/x").require_database()
    params = psycopg2.extensions.parse_dsn(dsn)
    assert params["password"] == "s3cr:t @/x"
    assert params["user"] == "deloton_app" and params["host"] == "db.internal"
    assert params["sslmode"] == "verify-full" and params["dbname"] == "deloton"


def test_without_a_password_the_url_is_used_as_given() -> None:
    assert _settings(database_url=URL).require_database() == URL


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A moto Secrets Manager endpoint that boto3 finds through AWS_ENDPOINT_URL_SECRETS_MANAGER."""
    with running_moto(tmp_path / "moto.log") as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield boto3.client("secretsmanager", region_name="eu-west-2", endpoint_url=url)


def test_a_lambda_reads_the_rds_managed_secret_by_its_arn(secrets: object) -> None:
    client = secrets  # type: ignore[assignment]
    arn = client.create_secret(  # type: ignore[attr-defined]
        Name="rds!db-1", SecretString=json.dumps({"username": "deloton", "password": "p@ss w0rd"})
    )["ARN"]
    settings = _settings(database_url=URL, database_secret_arn=arn, aws_region="eu-west-2")
    assert psycopg2.extensions.parse_dsn(settings.require_database())["password"] == "p@ss w0rd"


def test_an_unreadable_or_malformed_secret_is_a_config_error(secrets: object) -> None:
    client = secrets  # type: ignore[assignment]
    missing = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:nope-AbCdEf"
    with pytest.raises(ConfigError, match="cannot read secret"):
        _settings(database_url=URL, database_secret_arn=missing).require_database()
    arn = client.create_secret(Name="plain", SecretString="not json")["ARN"]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="JSON object"):
        _settings(database_url=URL, database_secret_arn=arn).require_database()
    arn = client.create_secret(Name="nopw", SecretString='{"username": "u"}')["ARN"]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="no 'password' key"):
        _settings(database_url=URL, database_secret_arn=arn).require_database()


def test_sasl_ssl_settings_reach_every_confluent_kafka_client() -> None:
    settings = _settings(
        kafka_bootstrap_servers="b-1.msk:9096",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="deloton",
        kafka_sasl_password=SecretStr("pw"),
    )
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "deloton",
        "sasl.password": "pw",
    }
    for conf in (producer_config(settings), consumer_config(settings, "g")):
        assert {k: conf[k] for k in expected} == expected


def test_plaintext_by_default_for_the_local_broker() -> None:
    conf = producer_config(_settings(kafka_bootstrap_servers="127.0.0.1:9092"))
    assert not {"security.protocol", "sasl.mechanism", "sasl.password"} & conf.keys()
    assert faust_credentials(_settings()) is None


def test_faust_gets_the_same_scram_credentials_over_tls() -> None:
    creds = faust_credentials(
        _settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="deloton",
            kafka_sasl_password=SecretStr("pw"),
        )
    )
    assert creds is not None
    assert creds.mechanism.value == "SCRAM-SHA-512"  # type: ignore[attr-defined]
    assert (creds.username, creds.password) == ("deloton", "pw")  # type: ignore[attr-defined]
    assert isinstance(creds.ssl_context, ssl.SSLContext)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cmdline", "url"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/deloton", "ingest"], "http://127.0.0.1:9101/metrics"),
        (["python", "/opt/venv/bin/deloton", "--log-level", "INFO", "alerts"], "http://127.0.0.1:9102/metrics"),
        (["python", "/opt/venv/bin/deloton", "compress", "--loop"], None),
        (["python", "/opt/venv/bin/deloton", "simulate", "--bikes", "5"], None),
    ],
)  # fmt: skip
def test_the_health_probe_follows_the_container_command(
    cmdline: list[str], url: str | None
) -> None:
    assert probe_url(cmdline, _settings()) == url


def test_the_health_probe_refuses_what_is_not_a_service() -> None:
    with pytest.raises(ValueError, match="not a deloton service"):
        probe_url(["/bin/sh", "-c", "sleep 1"], _settings())
