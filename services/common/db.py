"""PostgreSQL connections and the forward-only migration runner."""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions

from services.common.config import ConfigError, Settings

log = logging.getLogger(__name__)


def _migrations_dir() -> Path:
    """The packaged copy of the migrations (a wheel), else the checkout's schemas/sql."""
    packaged = Path(__file__).resolve().parent / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "schemas" / "sql"


MIGRATIONS_DIR = _migrations_dir()
_MIGRATION_LOCK = 0x6465_6C6F  # advisory lock key: "delo"


def connect(dsn: str, *, application_name: str = "deloton") -> psycopg2.extensions.connection:
    """Open a connection, turning an unreachable server into a ConfigError."""
    try:
        conn = psycopg2.connect(dsn, application_name=application_name, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        first = first_line(exc) or exc.__class__.__name__
        raise ConfigError(f"cannot connect to PostgreSQL ({redact(dsn)}): {first}") from exc
    conn.set_session(autocommit=False)
    return conn


def error_line(exc: BaseException) -> str:
    """What went wrong, in one line safe for logs.

    A database error gives its SQLSTATE and primary message, never its DETAIL: PostgreSQL
    quotes the offending row there ("Failing row contains (...)", "Key (...)=(...)"), and a
    rider's row holds personal data. Anything else gives its class and first line.
    """
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
        line = str(primary).splitlines()[0]
        line = f"{code}: {line}" if code else line
    else:
        first = first_line(exc)
        line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line[:300]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text ("" when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def error_where(exc: BaseException, frames: int = 4) -> str:
    """Where an exception was raised (its innermost frames), without its message."""
    return "".join(traceback.format_tb(exc.__traceback__)[-frames:]).rstrip()


def redact(dsn: str) -> str:
    """The DSN with any password replaced, safe for logs and error lines."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "<unparseable DATABASE_URL>"
    host = params.get("host", "localhost")
    return f"{params.get('user', '')}@{host}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def without_password(dsn: str) -> str:
    """A URL DSN with its password left out (still usable where the password comes from
    elsewhere, e.g. PGPASSWORD); other forms are redacted."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql") or "@" not in parts.netloc:
        return dsn if parts.scheme in ("postgres", "postgresql") else redact(dsn)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    query = "&".join(
        p for p in parts.query.split("&") if p and not p.lower().startswith("password=")
    )
    return urlunsplit(parts._replace(netloc=f"{user}@{hostport}", query=query))


@contextmanager
def transaction(conn: psycopg2.extensions.connection) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor inside one transaction: committed on success, rolled back on any error."""
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The numbered `NNNN_name.sql` migrations, in order."""
    return sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def migrate(conn: psycopg2.extensions.connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; return their names."""
    applied: list[str] = []
    with transaction(conn) as cur:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
    for path in migration_files(directory):
        version = int(path.name[:4])
        sql = path.read_text()
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        with transaction(conn) as cur:
            # Two `migrate` runs at once (two services starting) must not both apply a file.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(
                "SELECT checksum FROM public.schema_migrations WHERE version = %s", (version,)
            )
            row = cur.fetchone()
            if row is not None:
                if row[0] != checksum:
                    log.warning("migration %s changed after it was applied", path.name)
                continue
            cur.execute(sql)
            cur.execute(
                "INSERT INTO public.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (version, path.stem, checksum),
            )
            applied.append(path.name)
            log.info("applied migration %s", path.name)
    return applied


def pending(conn: psycopg2.extensions.connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """The migration files not yet recorded as applied (all of them on an empty database)."""
    with transaction(conn) as cur:
        cur.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
        row = cur.fetchone()
        applied: set[int] = set()
        if row is not None and row[0]:
            cur.execute("SELECT version FROM public.schema_migrations")
            applied = {int(version) for (version,) in cur.fetchall()}
    return [p.name for p in migration_files(directory) if int(p.name[:4]) not in applied]


def prepare_schema(conn: psycopg2.extensions.connection, settings: Settings) -> None:
    """At a service's start: migrate (AUTO_MIGRATE, local runs) or refuse a schema that is behind.

    In production migrations are their own step (`deloton migrate`, a one-off task run before
    the services), so a service never changes the schema under its running peers.
    """
    if settings.auto_migrate:
        migrate(conn)
        return
    missing = pending(conn)
    if missing:
        raise ConfigError(
            f"the database schema is behind: {len(missing)} migration(s) not applied "
            f"({', '.join(missing)}); run `deloton migrate` first"
        )
