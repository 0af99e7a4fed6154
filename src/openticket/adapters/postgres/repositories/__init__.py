"""Repositories over PostgreSQL: each aggregate to its rows and back.

Every write checks what the port promises at the statement itself: ``add`` relies on
the primary and unique keys, ``save`` updates only the version it loaded (else
``ConcurrencyError``). Reads build fresh aggregates, so they are detached copies.

A repository runs its statements through an
:class:`~openticket.adapters.postgres.executor.Executor` (its unit of work). Each
aggregate's table is described once (:class:`~.shared.Table`); its statements are built
from that description at import, with ``%(name)s`` placeholders, and rows are read by
column name.
"""

from openticket.adapters.postgres.repositories.catalog import (
    PostgresEventRepository,
    PostgresPriceCategoryRepository,
    PostgresSessionRepository,
    PostgresVenueRepository,
)
from openticket.adapters.postgres.repositories.orders import PostgresOrderRepository
from openticket.adapters.postgres.repositories.payments import PostgresPaymentRepository
from openticket.adapters.postgres.repositories.processed_events import (
    PostgresProcessedEventRepository,
)
from openticket.adapters.postgres.repositories.tickets import PostgresTicketRepository
from openticket.adapters.postgres.repositories.users import PostgresUserRepository

__all__ = [
    "PostgresEventRepository",
    "PostgresOrderRepository",
    "PostgresPaymentRepository",
    "PostgresPriceCategoryRepository",
    "PostgresProcessedEventRepository",
    "PostgresSessionRepository",
    "PostgresTicketRepository",
    "PostgresUserRepository",
    "PostgresVenueRepository",
]
