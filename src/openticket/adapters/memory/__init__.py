"""In-memory adapters for every port: the embedded profile, tests and benchmarks."""

from openticket.adapters.memory.clock import FakeClock, SequentialIdGenerator, SequentialTicketCodes
from openticket.adapters.memory.database import MemoryDatabase, MemoryUnitOfWork
from openticket.adapters.memory.identity import MemoryPasswordHasher, MemoryTokenIssuer
from openticket.adapters.memory.lock_store import MemoryLockStore
from openticket.adapters.memory.messaging import MemoryEventPublisher, MemoryNotifier
from openticket.adapters.memory.outbox import MemoryOutboxRelay

__all__ = [
    "FakeClock",
    "MemoryDatabase",
    "MemoryEventPublisher",
    "MemoryLockStore",
    "MemoryNotifier",
    "MemoryOutboxRelay",
    "MemoryPasswordHasher",
    "MemoryTokenIssuer",
    "MemoryUnitOfWork",
    "SequentialIdGenerator",
    "SequentialTicketCodes",
]
