"""Every repository and unit-of-work contract against PostgreSQL."""

from __future__ import annotations

import pytest

from openticket.adapters.postgres import PostgresDatabase
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

pytestmark = pytest.mark.postgres


class PostgresFixture:
    """The unit-of-work factory of a database in the test's own schema."""

    @pytest.fixture
    def uow_factory(self, pg_database: PostgresDatabase) -> UnitOfWorkFactory:
        return pg_database.unit_of_work


class TestPostgresUserRepository(PostgresFixture, UserRepositoryContract):
    pass


class TestPostgresVenueRepository(PostgresFixture, VenueRepositoryContract):
    pass


class TestPostgresEventRepository(PostgresFixture, EventRepositoryContract):
    pass


class TestPostgresSessionRepository(PostgresFixture, SessionRepositoryContract):
    pass


class TestPostgresPriceCategoryRepository(PostgresFixture, PriceCategoryRepositoryContract):
    pass


class TestPostgresOrderRepository(PostgresFixture, OrderRepositoryContract):
    pass


class TestPostgresOrderLimits(PostgresFixture, OrderLimitsContract):
    pass


class TestPostgresPaymentRepository(PostgresFixture, PaymentRepositoryContract):
    pass


class TestPostgresTicketRepository(PostgresFixture, TicketRepositoryContract):
    pass


class TestPostgresProcessedEventRepository(PostgresFixture, ProcessedEventRepositoryContract):
    pass


class TestPostgresUnitOfWork(PostgresFixture, UnitOfWorkContract):
    pass
