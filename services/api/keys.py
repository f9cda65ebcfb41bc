"""Creating, revoking and listing API keys: plain functions the CLI and the demo call."""

from __future__ import annotations

from services.api import auth, repository
from services.api.repository import KeyRecord
from services.common.config import ConfigError
from services.common.pool import Connection


def create(conn: Connection, *, name: str, scopes: str) -> str:
    """Store a new key and return its token (shown once; only its hash is kept)."""
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise ConfigError("a key name is 1 to 100 printable characters")
    try:
        wanted = auth.parse_scopes(scopes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    token, prefix = auth.new_token()
    created = repository.create_key(
        conn, name=name, prefix=prefix, token_hash=auth.token_hash(token), scopes=wanted
    )
    if not created:
        raise ConfigError(f"a key named {name!r} exists already (names are never reused)")
    return token


def revoke(conn: Connection, *, name: str) -> None:
    """Revoke the active key of that name."""
    if not repository.revoke_key(conn, name=name):
        raise ConfigError(f"no active key named {name!r}")


def listing(conn: Connection) -> list[KeyRecord]:
    """Every key, without secrets."""
    return repository.list_keys(conn)
