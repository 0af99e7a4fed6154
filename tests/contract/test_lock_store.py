"""The lock-store contract against the in-memory lock store."""

import pytest

from openticket.adapters.memory import MemoryLockStore
from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.lock_store import LockStore
from openticket.testing.contracts import LockStoreContract


class TestMemoryLockStore(LockStoreContract):
    @pytest.fixture
    async def lock_store(self, clock: FakeClock) -> LockStore:
        return MemoryLockStore(clock)
