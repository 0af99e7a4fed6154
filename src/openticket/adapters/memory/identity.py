"""Fast identity adapters for tests and the embedded profile's unit tests.

``MemoryPasswordHasher`` is salted PBKDF2 with few rounds: correct, but cheap on
purpose so that test suites stay fast. Production uses the argon2id hasher.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from openticket.application.ports.clock import Clock
from openticket.application.ports.identity import AccessToken, InvalidToken, TokenClaims
from openticket.domain.identity import User

_ROUNDS = 1_000


class MemoryPasswordHasher:
    """Salted PBKDF2-SHA256 with few rounds: a real hash, deliberately cheap for tests."""

    def __init__(self, rounds: int = _ROUNDS) -> None:
        self._rounds = rounds
        self._dummy = self._derive("not-a-password", secrets.token_bytes(16), rounds)

    async def hash(self, password: str) -> str:
        """Hash with a fresh salt: ``pbkdf2$rounds$salt$digest``."""
        salt = secrets.token_bytes(16)
        return self._derive(password, salt, self._rounds)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; malformed hashes never match."""
        try:
            scheme, rounds, salt, _ = password_hash.split("$")
            if scheme != "pbkdf2":
                return False
            expected = self._derive(password, base64.b64decode(salt), int(rounds))
        except ValueError:
            return False
        return hmac.compare_digest(expected, password_hash)

    async def verify_unknown(self, password: str) -> None:
        """Spend one verify's time for a user that does not exist."""
        await self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash has fewer rounds than configured now."""
        try:
            return int(password_hash.split("$")[1]) < self._rounds
        except (IndexError, ValueError):
            return True

    @staticmethod
    def _derive(password: str, salt: bytes, rounds: int) -> str:
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
        return "$".join(
            (
                "pbkdf2",
                str(rounds),
                base64.b64encode(salt).decode(),
                base64.b64encode(digest).decode(),
            )
        )


class MemoryTokenIssuer:
    """Opaque random bearer tokens remembered in a dict; they expire by the clock."""

    def __init__(self, clock: Clock, ttl: timedelta = timedelta(minutes=15)) -> None:
        self._clock = clock
        self._ttl = ttl
        self._grants: dict[str, TokenClaims] = {}

    def issue(self, user: User) -> AccessToken:
        """A fresh token for ``user`` with their roles."""
        token = secrets.token_urlsafe(32)
        claims = TokenClaims(
            user_id=user.user_id, roles=user.roles, expires_at=self._clock.now() + self._ttl
        )
        self._grants[token] = claims
        return AccessToken(access_token=token, expires_in=int(self._ttl.total_seconds()))

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token this issuer handed out and that has not expired."""
        claims = self._grants.get(token)
        if claims is None:
            raise InvalidToken("unknown token")
        if self._clock.now() >= claims.expires_at:
            del self._grants[token]
            raise InvalidToken("token expired")
        return claims
