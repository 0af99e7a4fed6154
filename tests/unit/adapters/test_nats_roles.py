"""Which streams and subjects each saga role's durable consumers read."""

from __future__ import annotations

import pytest

import openticket
from openticket.adapters.nats.consumer import server_filter
from openticket.adapters.nats.roles import role_subjects
from openticket.adapters.nats.streams import UnroutableEvent
from openticket.application.roles import EventRole
from openticket.domain.shared import DomainEvent


def test_each_role_reads_the_subjects_of_its_events_stream_by_stream() -> None:
    app = openticket.bootstrap()
    subjects = {role.name: role_subjects(role, "p") for role in app.roles}
    assert subjects == {
        "ticketing": {"P_PAYMENTS": ["p.payment.succeeded.*"]},
        "order-saga": {
            "P_PAYMENTS": ["p.payment.failed.*", "p.refund.succeeded.*"],
            "P_ORDERS": [
                "p.order.failed.*",
                "p.order.cancelled.*",
                "p.order.expired.*",
                "p.order.refunded.*",
            ],
        },
        "payments": {"P_ORDERS": ["p.order.expired.*", "p.order.cancelled.*"]},
    }
    # NATS 2.9 takes one filter per consumer: the ORDERS durables filter on order.>, the
    # order saga's PAYMENTS one on the deployment's prefix (payment.* and refund.*)
    assert server_filter(subjects["order-saga"]["P_ORDERS"]) == "p.order.>"
    assert server_filter(subjects["order-saga"]["P_PAYMENTS"]) == "p.>"


def test_a_role_with_an_event_no_stream_carries_is_refused() -> None:
    class Unrouted(DomainEvent):
        pass

    async def handle(event: DomainEvent) -> None:
        return None

    with pytest.raises(UnroutableEvent, match="Unrouted"):
        role_subjects(EventRole("odd", {Unrouted: ("odd", handle)}))
