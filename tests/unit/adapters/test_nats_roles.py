"""Which streams and subjects each saga role's durable consumers read."""

from __future__ import annotations

import pytest

import openticket
from openticket.adapters.nats.roles import role_durables
from openticket.adapters.nats.streams import UnroutableEvent
from openticket.application.roles import EventRole
from openticket.domain.shared import DomainEvent


def test_each_subject_has_a_durable_of_its_own_so_no_role_is_handed_what_it_skips() -> None:
    # NATS 2.9 takes one filter per consumer: a durable covering the order saga's ORDERS
    # subjects would filter on order.> and be handed every order and ticket event
    app = openticket.bootstrap()
    durables = {role.name: role_durables(role, "p") for role in app.roles}
    assert durables == {
        "ticketing": [("P_PAYMENTS", "ticketing", "p.payment.succeeded.*")],
        "order-saga": [
            ("P_PAYMENTS", "order-saga-payment-failed", "p.payment.failed.*"),
            ("P_PAYMENTS", "order-saga-refund-succeeded", "p.refund.succeeded.*"),
            ("P_ORDERS", "order-saga-order-failed", "p.order.failed.*"),
            ("P_ORDERS", "order-saga-order-cancelled", "p.order.cancelled.*"),
            ("P_ORDERS", "order-saga-order-expired", "p.order.expired.*"),
            ("P_ORDERS", "order-saga-order-refunded", "p.order.refunded.*"),
        ],
        "payments": [
            ("P_ORDERS", "payments-order-expired", "p.order.expired.*"),
            ("P_ORDERS", "payments-order-cancelled", "p.order.cancelled.*"),
        ],
    }


def test_a_role_with_an_event_no_stream_carries_is_refused() -> None:
    class Unrouted(DomainEvent):
        pass

    async def handle(event: DomainEvent) -> None:
        return None

    with pytest.raises(UnroutableEvent, match="Unrouted"):
        role_durables(EventRole("odd", {Unrouted: ("odd", handle)}))
