"""Identity ports: password hashing and access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from openticket.application.ports.errors import PortError
from openticket.domain.identity import Role, User
from openticket.domain.shared import UserId


class InvalidToken(PortError):
    """A token that is malformed, forged, expired or not for us: 401."""

    code = "unauthorized"


class PasswordHasher(Protocol):
    """Slow, salted password hashes (argon2id in production)."""

    async def hash(self, password: str) -> str:
        """A new hash of ``password`` with a fresh salt."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``."""
        ...

    async def verify_unknown(self, password: str) -> None:
        """Spend the time a verify takes, for a user that does not exist.

        Keeps a login for an unknown e-mail as slow as one for a known one.
        """
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than today's."""
        ...


@attrs.frozen(kw_only=True)
class AccessToken:
    """A bearer token and how many seconds it lives."""

    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105  # the OAuth token type, not a secret


@attrs.frozen(kw_only=True)
class TokenClaims:
    """Who a verified token speaks for."""

    user_id: UserId
    roles: frozenset[Role]
    expires_at: datetime


class TokenIssuer(Protocol):
    """Issues and verifies access tokens."""

    def issue(self, user: User) -> AccessToken:
        """A token for ``user`` carrying their roles."""
        ...

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; ``InvalidToken`` for anything else."""
        ...
