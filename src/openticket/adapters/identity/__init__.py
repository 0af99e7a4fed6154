"""Production identity adapters: argon2id password hashes and JWT access tokens."""

from openticket.adapters.identity.argon2_hasher import Argon2PasswordHasher
from openticket.adapters.identity.jwt_tokens import JwtTokenIssuer

__all__ = ["Argon2PasswordHasher", "JwtTokenIssuer"]
