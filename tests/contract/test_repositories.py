"""The repository and unit-of-work contracts against the in-memory database."""

import pytest

from openticket.adapters.memory import MemoryDatabase
from openticket.application.ports.unit_of_work import UnitOfWorkFactory
from openticket.testing.contracts import (
    EventRepositoryContract,
    OrderLimitsContract,
    OrderRepositoryContract,
    PaymentRepositoryContract,
    PriceCategoryRepositoryContract,
    ProcessedEventRepositoryContract,
    SessionRepositoryContract,
    TicketRepositoryContract,
    UnitOfWorkContract,
    UserRepositoryContract,
    VenueRepositoryContract,
)


class MemoryDatabaseFixture:
    """A fresh in-memory database per test; its ``unit_of_work`` is the factory."""

    @pytest.fixture
    def uow_factory(self) -> UnitOfWorkFactory:
        return MemoryDatabase().unit_of_work


class TestMemoryUserRepository(MemoryDatabaseFixture, UserRepositoryContract):
    pass


class TestMemoryVenueRepository(MemoryDatabaseFixture, VenueRepositoryContract):
    pass


class TestMemoryEventRepository(MemoryDatabaseFixture, EventRepositoryContract):
    pass


class TestMemorySessionRepository(MemoryDatabaseFixture, SessionRepositoryContract):
    pass


class TestMemoryPriceCategoryRepository(MemoryDatabaseFixture, PriceCategoryRepositoryContract):
    pass


class TestMemoryOrderRepository(MemoryDatabaseFixture, OrderRepositoryContract):
    pass


class TestMemoryOrderLimits(MemoryDatabaseFixture, OrderLimitsContract):
    pass


class TestMemoryPaymentRepository(MemoryDatabaseFixture, PaymentRepositoryContract):
    pass


class TestMemoryTicketRepository(MemoryDatabaseFixture, TicketRepositoryContract):
    pass


class TestMemoryProcessedEventRepository(MemoryDatabaseFixture, ProcessedEventRepositoryContract):
    pass


class TestMemoryUnitOfWork(MemoryDatabaseFixture, UnitOfWorkContract):
    pass
