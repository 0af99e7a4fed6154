"""Access tokens as signed JWTs (PyJWT): HS256 with a shared secret, or RS256 with a key pair.

Verification trusts nothing in the token that it did not check: exactly one algorithm (the
configured one), our key id, our issuer and audience, and the times judged by the injected
clock rather than the machine's. Whatever is wrong comes out as ``InvalidToken``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from openticket.application.ports.clock import Clock
from openticket.application.ports.identity import AccessToken, InvalidToken, TokenClaims
from openticket.domain.identity import Role, User
from openticket.domain.shared import UserId

DEFAULT_ISSUER = "openticket"
DEFAULT_AUDIENCE = "openticket"
DEFAULT_TTL = timedelta(minutes=15)
MIN_SECRET_BYTES = 32
"""RFC 7518 §3.2: an HS256 key is at least as long as the hash, 256 bits."""
MIN_RSA_KEY_BITS = 2048

_REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]
_KNOWN_ROLES = frozenset(role.value for role in Role)


VERIFIED_TOKENS: Final = 10_000
"""Tokens whose signature check a process remembers (the oldest is forgotten first)."""


class JwtTokenIssuer:
    """A ``TokenIssuer`` of short-lived JWTs carrying the user's id and roles.

    Give either ``secret`` (HS256) or ``private_key_pem`` (RS256; ``public_key_pem`` may be
    given too and must then belong to the private key). ``key_id`` goes into every token's
    ``kid`` header and must come back on verify; by default it is derived from the
    verification key, so processes sharing a key share the id and a new key gets a new one.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        secret: str | None = None,
        private_key_pem: str | bytes | None = None,
        public_key_pem: str | bytes | None = None,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        ttl: timedelta = DEFAULT_TTL,
        key_id: str | None = None,
    ) -> None:
        """Configure the issuer; a weak or inconsistent configuration raises ``ValueError``."""
        if ttl < timedelta(seconds=1):
            raise ValueError("a token lives at least one second")
        if not issuer or not audience:
            raise ValueError("issuer and audience must not be empty")
        if key_id is not None and not key_id:
            raise ValueError("key_id must not be empty")
        self._clock = clock
        self._verified: dict[str, Mapping[str, Any]] = {}
        """Payloads of tokens whose signature, key, audience and issuer were checked."""
        self._issuer = issuer
        self._audience = audience
        self._lifetime_seconds = int(ttl.total_seconds())
        self._algorithm: Literal["HS256", "RS256"]
        self._signing_key: bytes | RSAPrivateKey
        self._verification_key: bytes | RSAPublicKey
        if secret is not None and private_key_pem is None:
            if public_key_pem is not None:
                raise ValueError("a public key goes with a private key, not with a secret")
            secret_bytes = secret.encode()
            if len(secret_bytes) < MIN_SECRET_BYTES:
                raise ValueError(f"an HS256 secret has at least {MIN_SECRET_BYTES} bytes")
            self._algorithm = "HS256"
            self._signing_key = self._verification_key = secret_bytes
            fingerprint_source = secret_bytes
        elif private_key_pem is not None and secret is None:
            private_key, public_key = _load_rsa_key_pair(private_key_pem, public_key_pem)
            self._algorithm = "RS256"
            self._signing_key, self._verification_key = private_key, public_key
            fingerprint_source = public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            raise ValueError("give either a secret (HS256) or a private key (RS256)")
        self._key_id = key_id or hashlib.sha256(fingerprint_source).hexdigest()[:16]

    @classmethod
    def from_secret_or_random(
        cls,
        clock: Clock,
        secret: str | None = None,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        ttl: timedelta = DEFAULT_TTL,
        key_id: str | None = None,
    ) -> JwtTokenIssuer:
        """An HS256 issuer with ``secret``, or with a random one made now when it is unset.

        With a random secret, tokens die with the process and no other process accepts
        them: fine for one embedded process, not for several API processes.
        """
        return cls(
            clock,
            secret=secret or secrets.token_urlsafe(32),
            issuer=issuer,
            audience=audience,
            ttl=ttl,
            key_id=key_id,
        )

    @property
    def algorithm(self) -> str:
        """The one signing algorithm this issuer uses and accepts."""
        return self._algorithm

    @property
    def key_id(self) -> str:
        """The ``kid`` header of every token this issuer signs and accepts."""
        return self._key_id

    def issue(self, user: User) -> AccessToken:
        """A token for ``user`` with their roles, living ``ttl`` from the clock's now."""
        issued_at = math.floor(self._clock.now().timestamp())
        payload = {
            "sub": str(user.user_id),
            "roles": sorted(role.value for role in user.roles),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + self._lifetime_seconds,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": secrets.token_urlsafe(16),
        }
        token = jwt.encode(
            payload, self._signing_key, algorithm=self._algorithm, headers={"kid": self._key_id}
        )
        return AccessToken(access_token=token, expires_in=self._lifetime_seconds)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token this issuer signed that is valid now; else ``InvalidToken``.

        What does not depend on the time (the signature, the key, the audience, the
        issuer, the claims' presence) is checked once per token and remembered for the
        most recent tokens (:data:`VERIFIED_TOKENS`): a buyer sends the same token with
        every request, and checking it again costs more than the rest of a small
        request. The time claims are judged at every use.
        """
        payload = self._verified.get(token)
        if payload is None:
            payload = self._verify_signed(token)
            verified = self._verified
            if len(verified) >= VERIFIED_TOKENS:
                del verified[next(iter(verified))]  # the oldest goes
            verified[token] = payload
        return self._claims(payload)

    def _verify_signed(self, token: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise InvalidToken("not a well-formed token") from e
        if header.get("kid") != self._key_id:
            raise InvalidToken("token signed with an unknown key")
        try:
            payload = jwt.decode(
                token,
                self._verification_key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "strict_aud": True,
                    # Times are judged below by the injected clock, not by the machine's.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": list(_REQUIRED_CLAIMS),
                },
            )
        except jwt.PyJWTError as e:
            raise InvalidToken("token refused") from e
        return payload

    def _claims(self, payload: Mapping[str, Any]) -> TokenClaims:
        now = self._clock.now().timestamp()
        expires = _numeric_date(payload, "exp")
        issued = _numeric_date(payload, "iat")
        not_before = _numeric_date(payload, "nbf") if "nbf" in payload else issued
        if now >= expires:
            raise InvalidToken("token expired")
        if now < not_before or now < issued:
            raise InvalidToken("token not valid yet")
        return TokenClaims(
            user_id=_user_id(payload["sub"]),
            roles=_roles(payload.get("roles")),
            expires_at=_moment(expires),
        )


def _load_rsa_key_pair(
    private_key_pem: str | bytes, public_key_pem: str | bytes | None
) -> tuple[RSAPrivateKey, RSAPublicKey]:
    private_key = serialization.load_pem_private_key(_as_bytes(private_key_pem), password=None)
    if not isinstance(private_key, RSAPrivateKey):
        raise ValueError("RS256 needs an RSA private key")
    if private_key.key_size < MIN_RSA_KEY_BITS:
        raise ValueError(f"an RSA key has at least {MIN_RSA_KEY_BITS} bits")
    public_key = private_key.public_key()
    if public_key_pem is not None:
        given = serialization.load_pem_public_key(_as_bytes(public_key_pem))
        if not isinstance(given, RSAPublicKey) or given.public_numbers() != (
            public_key.public_numbers()
        ):
            raise ValueError("the public key does not belong to the private key")
    return private_key, public_key


def _as_bytes(pem: str | bytes) -> bytes:
    return pem.encode() if isinstance(pem, str) else pem


def _numeric_date(payload: Mapping[str, Any], claim: str) -> float:
    value = payload[claim]
    # bool is an int to Python, but ``true`` is not a date
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"claim {claim!r} is not a date")
    return float(value)


def _moment(timestamp: float) -> datetime:
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise InvalidToken("claim 'exp' is out of range") from e


def _user_id(subject: object) -> UserId:
    if not isinstance(subject, str):
        raise InvalidToken("claim 'sub' is not a user id")
    try:
        user_id = UUID(subject)
    except ValueError as e:
        raise InvalidToken("claim 'sub' is not a user id") from e
    if str(user_id) != subject:
        raise InvalidToken("claim 'sub' is not a user id in canonical form")
    return UserId(user_id)


def _roles(value: object) -> frozenset[Role]:
    if not isinstance(value, list) or not value:
        raise InvalidToken("claim 'roles' is not a list of roles")
    if not all(isinstance(role, str) and role in _KNOWN_ROLES for role in value):
        raise InvalidToken("claim 'roles' names an unknown role")
    return frozenset(Role(role) for role in value)
