"""Contract test suites for adapter authors: one class per port, subclassed per adapter.

Subclass a contract in a test module (its name must start with ``Test``), define the
fixtures it names — usually just the adapter — and pytest runs every check against
your adapter::

    from openticket.testing.contracts import LockStoreContract

    class TestRedisLockStore(LockStoreContract):
        @pytest.fixture
        async def lock_store(self, clock):
            async with redis_lock_store(clock) as store:
                yield store

The suites use only the ports' public API, fresh random ids, and short TTLs, so they
run against a server that other tests share. They need ``pytest`` and
``pytest-asyncio`` (with ``asyncio_mode = "auto"``).
"""

import pytest

# Rewrite the suites' asserts as pytest does for test modules, so a failure shows values.
pytest.register_assert_rewrite(
    "openticket.testing.contracts._builders",
    "openticket.testing.contracts._uow",
    "openticket.testing.contracts.bot_defence",
    "openticket.testing.contracts.identity",
    "openticket.testing.contracts.lock_store",
    "openticket.testing.contracts.messaging",
    "openticket.testing.contracts.payments",
    "openticket.testing.contracts.rate_limit",
    "openticket.testing.contracts.repositories",
    "openticket.testing.contracts.seat_cache",
    "openticket.testing.contracts.signal_counter",
    "openticket.testing.contracts.unit_of_work",
    "openticket.testing.contracts.waiting_room",
)

from openticket.testing.contracts._clock import InRealTime  # noqa: E402
from openticket.testing.contracts.bot_defence import BotDefenceContract  # noqa: E402
from openticket.testing.contracts.identity import (  # noqa: E402
    PasswordHasherContract,
    TokenIssuerContract,
)
from openticket.testing.contracts.lock_store import LockStoreContract  # noqa: E402
from openticket.testing.contracts.messaging import (  # noqa: E402
    EventPublisherContract,
    NotifierContract,
)
from openticket.testing.contracts.payments import (  # noqa: E402
    BuyerAtProvider,
    PaymentProviderContract,
)
from openticket.testing.contracts.rate_limit import RateLimiterContract  # noqa: E402
from openticket.testing.contracts.repositories import (  # noqa: E402
    EventRepositoryContract,
    OrderLimitsContract,
    OrderRepositoryContract,
    PaymentRepositoryContract,
    PriceCategoryRepositoryContract,
    ProcessedEventRepositoryContract,
    SessionRepositoryContract,
    TicketRepositoryContract,
    UserRepositoryContract,
    VenueRepositoryContract,
)
from openticket.testing.contracts.seat_cache import SeatStatusCacheContract  # noqa: E402
from openticket.testing.contracts.signal_counter import SignalCounterContract  # noqa: E402
from openticket.testing.contracts.unit_of_work import UnitOfWorkContract  # noqa: E402
from openticket.testing.contracts.waiting_room import WaitingRoomStoreContract  # noqa: E402

__all__ = [
    "BotDefenceContract",
    "BuyerAtProvider",
    "EventPublisherContract",
    "EventRepositoryContract",
    "InRealTime",
    "LockStoreContract",
    "NotifierContract",
    "OrderLimitsContract",
    "OrderRepositoryContract",
    "PasswordHasherContract",
    "PaymentProviderContract",
    "PaymentRepositoryContract",
    "PriceCategoryRepositoryContract",
    "ProcessedEventRepositoryContract",
    "RateLimiterContract",
    "SeatStatusCacheContract",
    "SessionRepositoryContract",
    "SignalCounterContract",
    "TicketRepositoryContract",
    "TokenIssuerContract",
    "UnitOfWorkContract",
    "UserRepositoryContract",
    "VenueRepositoryContract",
    "WaitingRoomStoreContract",
]
