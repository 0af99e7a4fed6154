"""A payment whose start the provider never answered us (the answer was lost on the way).

The money may have moved all the same: the mock settles as it creates. Once the order
has ended, the sweeper asks the provider again with the same idempotency key and settles
what it hears like any other payment — refunded if money came in, cancelled if not — so
no payment stays ``initiated`` forever and no money stays taken.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from openticket import bootstrap
from openticket.adapters.memory import FakeClock, SequentialIdGenerator, SequentialTicketCodes
from openticket.adapters.payments.mock import MockPaymentProvider
from openticket.application.ports.payments import (
    PaymentProviderUnavailable,
    PaymentRequest,
    ProviderPayment,
)
from openticket.domain.ordering import OrderStatus
from openticket.domain.payment import Payment, PaymentStatus
from openticket.domain.shared import OrderId
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world

TTL = timedelta(seconds=120)


class LostAnswers(MockPaymentProvider):
    """The mock, whose answers about a payment are lost while ``lost`` is set."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.lost = True

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        made = await super().create_payment(request)
        if self.lost:
            raise PaymentProviderUnavailable("the answer was lost on the way back")
        return made


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    app = bootstrap(
        Settings(partitions=2, hold_ttl_seconds=TTL.total_seconds()),
        clock=clock,
        ids=SequentialIdGenerator(11),
        ticket_codes=SequentialTicketCodes(11),
        payment_providers={"mock": LostAnswers(clock)},
    )
    built = await build_world(app, clock)
    await app.start(sweeper=False)
    try:
        yield built
    finally:
        await app.stop()


async def test_money_taken_behind_a_lost_answer_is_refunded_once_the_order_ended(
    world: World,
) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-1-1"])
    with pytest.raises(PaymentProviderUnavailable):
        await app.pay(buyer, order.order_id)  # the mock took the money; we never heard
    (payment,) = await _payments(world, order.order_id)
    assert payment.status is PaymentStatus.INITIATED
    assert payment.provider_transaction_id is None
    await app.sweep()  # the order is still open: its buyer may try again
    assert (await _payments(world, order.order_id))[0].status is PaymentStatus.INITIATED

    mock = app.payments.provider("mock")
    assert isinstance(mock, LostAnswers)
    mock.lost = False  # the network is back
    world.clock.advance(TTL + timedelta(seconds=1))
    await app.sweep()  # expires the order, then asks the provider again
    (settled,) = await _payments(world, order.order_id)
    assert settled.status is PaymentStatus.REFUNDED
    assert len(mock.refunds) == 1
    assert mock.captured is None
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.EXPIRED
    assert (await app.list_tickets(buyer)).items == ()


async def _payments(world: World, order_id: OrderId) -> list[Payment]:
    async with world.app.catalog._uow() as uow:  # the stored rows
        return list(await uow.payments.list_for_order(order_id))
