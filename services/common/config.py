"""Settings for every Deloton service, read once at the entrypoint and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

STATE_DIR = Path(".deloton")
ENV_FILE = STATE_DIR / "env"


class Settings(BaseSettings):
    """Environment variables (or `.deloton/env`, written by `deloton infra up`)."""

    model_config = SettingsConfigDict(
        env_file=str(ENV_FILE), env_file_encoding="utf-8", extra="ignore"
    )

    # Connections. Unset means "use the embedded infrastructure from `deloton infra up`".
    kafka_bootstrap_servers: str | None = None
    database_url: SecretStr | None = None
    # Production: DATABASE_URL without a password, and the password from Secrets Manager: an
    # ECS task gets it injected as DATABASE_PASSWORD; a Lambda function, which cannot inject
    # secrets, reads the secret (JSON with a "password" key, as RDS manages it) by its ARN.
    database_password: SecretStr | None = None
    database_secret_arn: str | None = None
    # A cluster that wants TLS and SASL (MSK with SCRAM, a managed Kafka): e.g. SASL_SSL and
    # SCRAM-SHA-512. None keeps plaintext without authentication (local broker, compose).
    kafka_security_protocol: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None

    # Client tuning. None keeps each client's own default (right for a real cluster);
    # `deloton infra up` writes the values the embedded broker needs into .deloton/env.
    kafka_session_timeout_ms: int | None = None
    kafka_heartbeat_interval_ms: int | None = None
    kafka_fetch_queue_backoff_ms: int | None = 10
    kafka_fetch_wait_max_ms: int | None = None
    kafka_topic_partitions: int = 4
    # Copies of each topic the services create: 1 for the local broker, 3 on MSK.
    kafka_topic_replication_factor: int = Field(default=1, ge=1)

    # Topics.
    topic_raw: str = "deloton"
    topic_bikes: str = "deloton.bikes"
    topic_telemetry: str = "deloton.telemetry"
    topic_events: str = "deloton.events"
    topic_rejects: str = "deloton.rejects"
    topic_alerts: str = "deloton.alerts"

    # Schema. True: each service applies pending migrations at start (local runs, the demo,
    # the tests). Production sets false and runs `deloton migrate` as its own step first; a
    # service then refuses to start on a schema that is behind.
    auto_migrate: bool = True

    # Local embedded infrastructure.
    state_dir: Path = STATE_DIR
    embedded_kafka_port: int = 19092
    embedded_postgres_port: int = 15432

    # Ingest.
    ingest_group: str = "deloton-ingest"
    ingest_split_topics: bool = False
    ingest_batch_size: int = Field(default=20_000, ge=1)
    ingest_batch_max_ms: int = Field(default=100, ge=1)
    ingest_publish_events: bool = True
    ride_silence_s: int = Field(default=60, ge=1)
    # Lines stamped further ahead of the wall clock than this are rejected (bad_value); a
    # simulator running faster than real time needs it raised.
    ingest_max_future_s: float = Field(default=300.0, ge=0)
    # A bike whose ride is closed and that sent nothing for this long (its partition's event
    # time) is forgotten, in memory and in the saved state; 0 keeps every bike for ever.
    ingest_evict_idle_s: float = Field(default=600.0, ge=0)
    # Readings held per bike while its SYSTEM line may still come (split topics).
    ingest_max_held_per_bike: int = Field(default=600, ge=1)
    # Messages per partition the consumer keeps fetched ahead (librdkafka queued.min.messages,
    # default 100,000): at 1,000 bikes the default added about 30 MB to the peak RSS,
    # while 20,000 a partition is most of a second of parsing, against fetches of milliseconds.
    ingest_queued_min_messages: int = Field(default=20_000, ge=1)
    # Bytes one fetch may bring (librdkafka fetch.max.bytes, default 50 MiB, and
    # max.partition.fetch.bytes, default 1 MiB). A response is held whole until its last
    # message is read, and the broker's first fetch of a backlog (~56 MB) was a third of
    # ingest's peak RSS. Alternated runs on one quiet machine: 2 MiB / 512 KiB peaked at
    # 137-138 MB against 176-179 MB with the defaults at the same W3 rate; 1 MiB / 256 KiB
    # at 131 MB but 10% slower (more round trips); 4 MiB saved only 12 MB.
    ingest_fetch_max_bytes: int = Field(default=2_097_152, ge=65_536)
    ingest_partition_fetch_max_bytes: int = Field(default=524_288, ge=16_384)
    ingest_metrics_port: int = 9101
    # Address the /metrics servers listen on: loopback unless a container needs 0.0.0.0.
    metrics_bind: str = "127.0.0.1"
    # Dead letters (daily.rejects, the rejects topic) hold raw lines, which may carry a
    # rider's details: compress purges them after this many days; the topic keeps as long.
    rejects_retention_days: float = Field(default=7.0, gt=0)

    # Heart-rate alerts.
    alerts_app_id: str = "deloton-alerts"
    alerts_metrics_port: int = 9102
    alert_episode_readings: int = Field(default=3, ge=1)
    alert_recovery_readings: int = Field(default=3, ge=1)
    alert_max_hr_young_male_base: float = 220.0  # Fox: 220 - age (men under 40)
    alert_max_hr_older_male_base: float = 208.0  # Tanaka: 208 - 0.7 x age (men 40+)
    alert_max_hr_older_male_factor: float = 0.7
    alert_max_hr_other_base: float = 206.0  # Gulati: 206 - 0.88 x age (women, others)
    alert_max_hr_other_factor: float = 0.88
    alert_male_split_age: int = 40
    alert_min_hr_male: tuple[int, int, int] = (40, 47, 52)  # ages 18-39, 40-64, 65+
    alert_min_hr_female: tuple[int, int, int] = (45, 52, 57)
    alert_min_hr_band_starts: tuple[int, int] = (40, 65)  # ages where bands 2 and 3 begin
    email_sender: str = "alerts@deloton.example"
    email_reply_to: str | None = None
    email_override_recipient: str | None = None
    # The override against real AWS SES would send every rider's alert to one mailbox.
    alert_override_in_production: bool = False
    # An alert not delivered this long after its confirming reading is `expired`: the rider
    # has likely stopped. Transient SES errors are retried until then, at most this far apart.
    alert_stale_after_s: float = Field(default=900.0, gt=0)
    alert_retry_max_s: float = Field(default=30.0, gt=0)
    email_outbox_dir: Path = Path("outbox")
    aws_region: str = "eu-west-2"
    ses_endpoint_url: str | None = None

    # Compress (daily -> historical).
    retention_hours: float = Field(default=12.0, gt=0)
    compress_batch_rides: int = Field(default=1000, ge=1)
    # After each batch compress pauses this many times as long as the batch took, leaving the
    # cores to ingest (0: no pause).
    compress_pause_ratio: float = Field(default=1.0, ge=0)
    compress_interval_s: int = Field(default=600, ge=1)
    compress_metrics_port: int = 9103  # `compress --loop` /metrics (0: off)

    # Daily executive report.
    report_timezone: str = "Europe/London"  # the business day the report covers
    report_recipients: str = ""  # comma-separated addresses; --to overrides
    report_sender: str = "reports@deloton.example"
    report_dir: Path = Path("reports")  # every PDF is also kept here
    report_bucket: str | None = None  # S3 bucket for the PDFs; unset keeps them local only
    report_s3_endpoint_url: str | None = None  # a local S3 (moto) instead of AWS
    report_top_riders: int = Field(default=5, ge=1, le=20)

    # Live dashboard.
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    dashboard_threads: int = Field(default=8, ge=1)
    dashboard_refresh_ms: int = Field(default=1000, ge=200)  # browser poll of live pages
    dashboard_idle_s: float = Field(default=30.0, gt=0)  # silence before "bike not in use"
    dashboard_recent_hours: float = Field(default=12.0, gt=0)  # window of the recent-rides page
    dashboard_cache_s: float = Field(default=5.0, ge=0)  # shared cache of database aggregates
    dashboard_bucket_minutes: int = Field(default=15, ge=1)  # recent-rides time-series step

    # REST API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    # Served under this path ("/api" behind the load balancer, which forwards /api/* as is).
    api_path_prefix: str = Field(default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$")
    api_workers: int = Field(default=1, ge=1)  # uvicorn worker processes
    api_pool_size: int = Field(default=8, ge=1)  # connections each API process holds at most
    api_rate_limit_per_s: float = Field(default=50.0, ge=0)  # per key; 0 turns the limit off
    api_rate_limit_burst: int = Field(default=100, ge=1)  # requests a key may send at once
    api_key_cache_s: float = Field(default=5.0, ge=0)  # a revoked key works at most this long
    # /leaderboard?since= answers are reused this long (a roll-up or DELETE shows within it).
    api_leaderboard_cache_s: float = Field(default=5.0, ge=0)
    # /daily's list of a day's rides (their ids, in order) is reused this long; the rides on
    # a page are read afresh. A ride started or rolled up shows within it, a DELETE through
    # the same process at once.
    api_daily_cache_s: float = Field(default=2.0, ge=0)

    # Settings changed at run time (ops.settings, through the API): how often services read
    # them. The values above are the defaults a setting without a stored value keeps.
    runtime_settings_refresh_s: float = Field(default=5.0, gt=0, le=10)

    # Fleet health: per-bike data quality and incidents (`deloton quality`).
    quality_window_s: int = Field(default=900, ge=60)  # seconds of readings each run judges
    quality_min_score: float = Field(default=0.7, ge=0, le=1)  # below: an incident opens
    quality_recover_score: float = Field(default=0.85, ge=0, le=1)  # at or above: it clears
    quality_min_readings: int = Field(default=60, ge=1)  # fewer in the window: not judged
    quality_interval_s: int = Field(default=60, ge=1)  # schedule of `quality --loop`
    quality_recipients: str = "ops@deloton.example"  # comma-separated: incident emails
    quality_sender: str = "fleet-health@deloton.example"
    # An incident email claimed but never confirmed (the run died while sending) is resolved
    # once this lease runs out; longer than the longest SES send with its retries.
    quality_email_lease_s: int = Field(default=300, ge=0)
    quality_metrics_port: int = 9104  # `quality --loop` /metrics (0: off)

    def require_kafka(self) -> str:
        """The bootstrap servers, or a clear error telling the user how to get them."""
        if not self.kafka_bootstrap_servers:
            raise ConfigError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: run `deloton infra up` or point it at a broker"
            )
        return self.kafka_bootstrap_servers

    def quality_recipient_list(self) -> list[str]:
        """QUALITY_RECIPIENTS split on commas, blanks dropped."""
        return [a.strip() for a in self.quality_recipients.split(",") if a.strip()]

    def report_recipient_list(self) -> list[str]:
        """REPORT_RECIPIENTS split on commas, blanks dropped."""
        return [a.strip() for a in self.report_recipients.split(",") if a.strip()]

    def require_database(self) -> str:
        """The database URL (with the password from its setting or secret), or a clear error."""
        if self.database_url is None:
            raise ConfigError(
                "DATABASE_URL is not set: run `deloton infra up` or point it at Postgres"
            )
        url = self.database_url.get_secret_value()
        if self.database_password is None and self.database_secret_arn:
            from services.common.secrets import secret_json

            password = secret_json(self.database_secret_arn, self.aws_region).get("password")
            if not isinstance(password, str):
                raise ConfigError(f"secret {self.database_secret_arn} has no 'password' key")
            self.database_password = SecretStr(password)
        if self.database_password is not None:
            from psycopg2.extensions import make_dsn

            url = make_dsn(url, password=self.database_password.get_secret_value())
        return url


class ConfigError(RuntimeError):
    """A configuration problem the user can fix; the CLI prints it as one line."""
