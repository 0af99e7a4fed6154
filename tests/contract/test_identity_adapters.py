"""The identity contracts against the production adapters: argon2id and JWT (HS256, RS256)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openticket.adapters.identity import Argon2PasswordHasher, JwtTokenIssuer
from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.identity import PasswordHasher, TokenIssuer
from openticket.testing.contracts import PasswordHasherContract, TokenIssuerContract

SECRET = "contract-suite-secret-of-at-least-32-bytes"


@pytest.fixture(scope="module")
def rsa_pem_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


class TestArgon2PasswordHasher(PasswordHasherContract):
    @pytest.fixture
    def hasher(self) -> PasswordHasher:
        # The minimum the adapter allows, which is also its default.
        return Argon2PasswordHasher(memory_cost=19_456, time_cost=2, parallelism=1)


class TestJwtTokenIssuerHs256(TokenIssuerContract):
    @pytest.fixture
    def token_issuer(self, clock: FakeClock) -> TokenIssuer:
        return JwtTokenIssuer(clock, secret=SECRET, ttl=timedelta(minutes=15))


class TestJwtTokenIssuerRandomSecret(TokenIssuerContract):
    @pytest.fixture
    def token_issuer(self, clock: FakeClock) -> TokenIssuer:
        return JwtTokenIssuer.from_secret_or_random(clock, None)


class TestJwtTokenIssuerRs256(TokenIssuerContract):
    @pytest.fixture
    def token_issuer(self, clock: FakeClock, rsa_pem_pair: tuple[bytes, bytes]) -> TokenIssuer:
        private_pem, public_pem = rsa_pem_pair
        return JwtTokenIssuer(
            clock, private_key_pem=private_pem, public_key_pem=public_pem, ttl=timedelta(minutes=5)
        )
