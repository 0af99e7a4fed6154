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


def test_a_scope_hands_out_a_copy_at_the_stored_version_once_and_forgets_it_after() -> None:
    order = new_order()
    order.version = 3
    with stored_scope():
        remember(order.order_id, order)
        order.version = 4  # changed after it was stored: the copy keeps what was stored
        assert recall(Payment, order.order_id) is None  # remembered by kind and key
        copy = recall(Order, order.order_id)
        assert copy is not None
        assert copy is not order
        assert copy.version == 3
        assert recall(Order, order.order_id) is None  # handed out once: it may change
        remember(order.order_id, order)
    assert recall(Order, order.order_id) is None
