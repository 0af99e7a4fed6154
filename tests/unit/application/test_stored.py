"""What a use case stored, remembered for the steps it sets off in the same scope only."""

from __future__ import annotations

from openticket.application.stored import recall, remember, stored_scope
from openticket.domain.ordering import Order
from openticket.domain.payment import Payment
from openticket.testing.contracts._builders import new_order


def test_outside_a_scope_nothing_is_remembered() -> None:
    order = new_order()
    remember(order.order_id, order)
    with stored_scope():
        assert recall(Order, order.order_id) is None


def test_a_scope_hands_out_copies_at_the_stored_version_and_forgets_them_after() -> None:
    order = new_order()
    order.version = 3
    with stored_scope():
        remember(order.order_id, order)
        order.version = 4  # changed after it was stored: the copy keeps what was stored
        first, second = recall(Order, order.order_id), recall(Order, order.order_id)
        assert first is not None
        assert second is not None
        assert first is not second
        assert first is not order
        assert first.version == 3
        assert recall(Payment, order.order_id) is None  # remembered by kind and key
    assert recall(Order, order.order_id) is None
