"""Admission tokens as HS256 JWTs (PyJWT), judged by the injected clock.

The key is the deployment's JWT secret (every API process shares it) or, when access
tokens are RS256, a key derived from the private key. The audience is
``openticket-admission``: an access token is never an admission token, nor the reverse.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import jwt

from openticket.application.ports.admission import Admission
from openticket.application.ports.clock import Clock
from openticket.domain.shared import SessionId, UserId

AUDIENCE: Final = "openticket-admission"
_ALGORITHMS: Final = ["HS256"]
_REQUIRED: Final = ["exp", "sub", "aud", "sid"]


def admission_key(material: str | bytes) -> bytes:
    """The admission key derived from a deployment secret (a JWT secret or a private key).

    Derived rather than the secret itself, so an admission token and an access token
    are never signed with the same key.
    """
    raw = material.encode() if isinstance(material, str) else material
    return hashlib.sha256(b"openticket admission tokens\x00" + raw).digest()


class JwtAdmissionTokens:
    """An ``AdmissionTokens`` of HS256 JWTs: ``sub`` the user, ``sid`` the session, ``exp``."""

    def __init__(self, clock: Clock, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("an admission key has at least 32 bytes")
        self._clock = clock
        self._key = key

    def issue(self, admission: Admission) -> str:
        """A signed token for ``admission`` (``exp`` is its end, to the second below)."""
        claims = {
            "sub": str(admission.user_id),
            "sid": str(admission.session_id),
            "aud": AUDIENCE,
            "exp": math.floor(admission.until.timestamp()),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def read(self, token: str) -> Admission | None:
        """The admission a valid token stands for; ``None`` for anything else."""
        if not token or len(token) > 1024:
            return None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=_ALGORITHMS,
                audience=AUDIENCE,
                options={"require": _REQUIRED, "verify_exp": False},
            )
            user, session = UUID(claims["sub"]), UUID(claims["sid"])
            until = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError):
            return None
        if until <= self._clock.now():
            return None
        return Admission(UserId(user), SessionId(session), until)
