"""API keys: tokens, their hashes, scopes, and a short-lived cache of looked-up keys."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SCOPES = ("read", "pii", "admin")
TOKEN_PREFIX = "dlt_"


@dataclass(frozen=True)
class ApiKey:
    """A key as the API knows it: never the token itself."""

    key_id: int
    name: str
    prefix: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def parse_scopes(text: str) -> list[str]:
    """'read,pii' -> ['read', 'pii']; ValueError naming any unknown scope. read is implied."""
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    return [s for s in SCOPES if s in wanted or s == "read"]


def new_token() -> tuple[str, str]:
    """A fresh token (256 random bits) and its display prefix; only its hash is stored."""
    secret = secrets.token_urlsafe(32)
    token = f"{TOKEN_PREFIX}{secret}"
    return token, token[: len(TOKEN_PREFIX) + 6]


def token_hash(token: str) -> bytes:
    """SHA-256 of a token: enough for random 256-bit secrets, and one index probe to find."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, None if absent or malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


class KeyCache:
    """Keys looked up by token hash, kept `ttl_s` so a request usually costs no lookup.

    A revoked key therefore keeps working for at most `ttl_s` in a running API.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict[bytes, tuple[ApiKey | None, float]] = {}

    def get(self, digest: bytes) -> tuple[bool, ApiKey | None]:
        """(found in cache, key or None for a known-bad token)."""
        with self._lock:
            hit = self._keys.get(digest)
            if hit is None or self.clock() - hit[1] > self.ttl_s:
                return False, None
            return True, hit[0]

    def put(self, digest: bytes, key: ApiKey | None) -> None:
        with self._lock:
            if len(self._keys) > 10_000:  # random tokens must not grow it without bound
                self._keys.clear()
            self._keys[digest] = (key, self.clock())
