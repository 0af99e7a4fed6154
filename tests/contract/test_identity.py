"""The identity contracts against the in-memory hasher and token issuer."""

from datetime import timedelta

import pytest

from openticket.adapters.memory import MemoryPasswordHasher, MemoryTokenIssuer
from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.identity import PasswordHasher, TokenIssuer
from openticket.testing.contracts import PasswordHasherContract, TokenIssuerContract


class TestMemoryPasswordHasher(PasswordHasherContract):
    @pytest.fixture
    def hasher(self) -> PasswordHasher:
        return MemoryPasswordHasher()


class TestMemoryTokenIssuer(TokenIssuerContract):
    @pytest.fixture
    def token_issuer(self, clock: FakeClock) -> TokenIssuer:
        return MemoryTokenIssuer(clock, ttl=timedelta(minutes=15))
