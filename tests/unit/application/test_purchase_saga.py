"""The purchase saga end to end in one process: hold, pay, tickets — and every way it ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from openticket.adapters.payments.mock import MockPaymentProvider
from openticket.application.access import Requester
from openticket.application.errors import Forbidden, NotFound, SeatingUnavailable
from openticket.application.ports.payments import (
    InvalidPaymentOptions,
    PaymentProviderError,
    ProviderPayment,
    ProviderStatus,
)
from openticket.application.seating.commands import SaleRecorded, SeatCommand, SellSeats
from openticket.application.stored import remember, stored_scope
from openticket.domain.catalog import SaleNotOpen
from openticket.domain.ordering import OrderStatus
from openticket.domain.payment import Payment, PaymentStatus, PaymentSucceeded
from openticket.domain.seating import (
    NotHolder,
    SeatsSpanAreas,
    SeatStatus,
    SeatsUnavailable,
    TooManySeats,
)
from openticket.domain.shared import AreaId, InvalidTransition, Money, OrderId, SeatId, SessionId
from openticket.domain.ticketing import AlreadyUsed, TicketStatus, TicketVoided
from openticket.domain.venue import UnknownSeats
from openticket.testing.world import World

TTL = timedelta(seconds=120)
PRICE_A = Money(Decimal("1200.00"), "TWD")


async def statuses(world: World, *seats: str) -> list[SeatStatus]:
    views = {v.seat_id: v.status for v in await world.app.seats(world.session_id)}
    return [views[SeatId(s)] for s in seats]


async def test_hold_pay_and_get_one_ticket_per_seat(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-1-1", "A-1-2"])
    assert order.status is OrderStatus.CREATED
    assert order.total.amount == 2 * PRICE_A.amount
    assert order.expires_at == world.clock.now() + TTL
    assert await statuses(world, "A-1-1", "A-1-2", "A-1-3") == [
        SeatStatus.HELD,
        SeatStatus.HELD,
        SeatStatus.AVAILABLE,
    ]

    payment = await app.pay(buyer, order.order_id)

    assert payment.status is PaymentStatus.SUCCEEDED
    done = await app.get_order(buyer, order.order_id)
    assert done.status is OrderStatus.COMPLETED
    assert done.payment_id == payment.payment_id
    tickets = (await app.list_tickets(buyer)).items
    assert sorted(t.seat_id for t in tickets) == ["A-1-1", "A-1-2"]
    assert {t.status for t in tickets} == {TicketStatus.ISSUED}
    assert len({t.qr_code for t in tickets}) == 2
    assert await statuses(world, "A-1-1", "A-1-2") == [SeatStatus.SOLD, SeatStatus.SOLD]


async def test_a_held_or_sold_seat_cannot_be_ordered_and_nothing_else_is_held(world: World) -> None:
    app = world.app
    first = await app.place_order(world.buyer(1), world.session_id, ["A-1-1"])
    with pytest.raises(SeatsUnavailable) as refused:
        await app.place_order(world.buyer(2), world.session_id, ["A-1-2", "A-1-1"])
    assert refused.value.seat_ids == ("A-1-1",)
    assert await statuses(world, "A-1-2") == [SeatStatus.AVAILABLE]
    await app.pay(world.buyer(1), first.order_id)
    with pytest.raises(SeatsUnavailable):
        await app.place_order(world.buyer(2), world.session_id, ["A-1-1"])
    assert (await app.list_orders(world.buyer(2))).items == ()


async def test_a_declined_payment_fails_the_order_and_frees_the_seats(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["B-1-1"])
    payment = await app.pay(buyer, order.order_id, outcome="decline")
    assert payment.status is PaymentStatus.FAILED
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.FAILED
    await app.seating.flush_events()
    assert await statuses(world, "B-1-1") == [SeatStatus.AVAILABLE]
    assert (await app.list_tickets(buyer)).items == ()
    again = await app.place_order(world.buyer(2), world.session_id, ["B-1-1"])
    assert again.status is OrderStatus.CREATED


async def test_an_unknown_mock_outcome_is_bad_input_that_leaves_the_order_as_it_was(
    world: World,
) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["B-1-2"])
    with pytest.raises(InvalidPaymentOptions):
        await app.pay(buyer, order.order_id, outcome="bogus")
    unchanged = await app.get_order(buyer, order.order_id)
    assert unchanged.status is OrderStatus.CREATED
    assert unchanged.payment_id is None
    assert await statuses(world, "B-1-2") == [SeatStatus.HELD]
    payment = await app.pay(buyer, order.order_id, outcome="succeed")
    assert payment.status is PaymentStatus.SUCCEEDED
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.COMPLETED


async def test_an_unpaid_order_expires_with_its_hold(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-5"])
    world.clock.advance(TTL)
    report = await app.sweep()
    assert report.orders_expired == 1
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.EXPIRED
    assert await statuses(world, "A-2-5") == [SeatStatus.AVAILABLE]
    with pytest.raises(Exception, match="expired"):
        await app.pay(buyer, order.order_id)


async def test_paying_after_the_hold_ran_out_but_before_the_sweep_is_refused(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-6"])
    world.clock.advance(TTL)
    with pytest.raises(Exception, match="expired"):
        await app.pay(buyer, order.order_id)
    assert (await app.list_tickets(buyer)).items == ()


async def test_a_payment_that_succeeds_after_expiry_is_refunded_once_and_sells_nothing(
    world: World,
) -> None:
    app = world.app
    late, quick = world.buyer(1), world.buyer(2)
    order = await app.place_order(late, world.session_id, ["A-1-9"])
    pending = await app.pay(late, order.order_id, outcome="delay")
    assert pending.status is PaymentStatus.PENDING
    mock = app.payments.provider("mock")
    assert isinstance(mock, MockPaymentProvider)
    transaction = pending.provider_transaction_id
    assert transaction is not None
    mock.settle(transaction, succeed=True)  # the money is in; its webhook is late
    world.clock.advance(TTL)
    await app.sweep()  # the order expires; cancelling the payment finds the money in
    assert (await app.get_order(late, order.order_id)).status is OrderStatus.EXPIRED

    other = await app.place_order(quick, world.session_id, ["A-1-9"])
    await app.pay(quick, other.order_id)

    body = json.dumps(
        {"event_id": "evt_1", "transaction_id": transaction, "status": "succeeded"}
    ).encode()
    headers = {"X-Mock-Signature": mock.sign(body)}
    await app.handle_webhook("mock", headers, body)
    await app.handle_webhook("mock", headers, body)  # delivered twice

    refunded = await app.payments.reconcile(pending.payment_id)
    assert refunded.status is PaymentStatus.REFUNDED
    assert mock.captured == PRICE_A  # the quick buyer's payment only
    assert (await app.get_order(late, order.order_id)).status is OrderStatus.EXPIRED
    assert (await app.list_tickets(late)).items == ()
    assert [t.seat_id for t in (await app.list_tickets(quick)).items] == ["A-1-9"]


def news_of_success(world: World, payment: Payment, event_id: UUID) -> PaymentSucceeded:
    """A ``PaymentSucceeded`` for a payment that succeeded, as a (re)delivery brings it."""
    return PaymentSucceeded(
        event_id=event_id,
        occurred_at=world.clock.now(),
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        user_id=payment.user_id,
        provider=payment.provider,
        amount=payment.amount,
        provider_transaction_id=payment.provider_transaction_id,
    )


async def test_the_same_success_delivered_twice_issues_tickets_once(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-1-5", "A-1-6"])
    await app.pay(buyer, order.order_id)
    payment_id = (await app.get_order(buyer, order.order_id)).payment_id
    assert payment_id is not None
    payment = await app.payments.reconcile(payment_id)
    replay = news_of_success(world, payment, UUID(int=424242))
    await app.bus.publish([replay])
    await app.bus.publish([replay])
    assert len((await app.list_tickets(buyer)).items) == 2
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.COMPLETED


class TwoOwnersOfOneSale:
    """The seating the saga sees while a partition changes hands under a paused worker.

    While ``down``, sales cannot reach the partition (it is moving). Then the first sale
    goes to the real owner and waits, once made, until ``go``; every later one is
    answered by a stale owner that does not know the hold (``NotHolder``).
    """

    def __init__(self, real: object) -> None:
        self.real = real
        self.down = True
        self.sold = asyncio.Event()
        self.go = asyncio.Event()
        self.sales = 0

    def ask(self, command: SeatCommand[Any]) -> Awaitable[Any]:
        if isinstance(command, SellSeats):
            return self._sell(command)
        return self.real.ask(command)  # type: ignore[attr-defined, no-any-return]

    async def _sell(self, command: SellSeats) -> SaleRecorded:
        if self.down:
            raise SeatingUnavailable("the partition is changing hands")
        self.sales += 1
        if self.sales > 1:
            raise NotHolder("no such hold in this partition (as the stale owner knew it)")
        sold: SaleRecorded = await self.real.ask(command)  # type: ignore[attr-defined]
        self.sold.set()
        await self.go.wait()
        return sold

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


async def test_a_success_handled_twice_at_once_and_refunded_by_one_copy_frees_its_seats(
    world: World,
) -> None:
    """Two deliveries of one success run at once; one sells, the other is told no and refunds.

    (A worker paused past the ack wait resumes its copy while another worker runs the
    redelivered one.) The buyer has the money back and no ticket, so the seats the
    selling copy took must go back on sale, not stay sold to a failed order.
    """
    app, buyer = world.app, world.buyer(1)
    saga = app.saga
    seating = TwoOwnersOfOneSale(saga._seating)
    saga._seating = seating  # type: ignore[assignment]
    order = await app.place_order(buyer, world.session_id, ["A-2-7", "A-2-8"])
    payment = await app.pay(buyer, order.order_id)  # the money is in; the sale must wait
    assert payment.status is PaymentStatus.SUCCEEDED
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.PAYMENT_PENDING
    seating.down = False
    success = news_of_success(world, payment, UUID(int=515151))
    selling = asyncio.create_task(saga.on_payment_succeeded(success))
    await seating.sold.wait()
    await saga.on_payment_succeeded(success)  # the other copy: refund, order failed
    seating.go.set()
    await selling

    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.FAILED
    assert (await app.payments.reconcile(payment.payment_id)).status is PaymentStatus.REFUNDED
    assert (await app.list_tickets(buyer)).items == ()
    await app.seating.flush_events()
    assert await statuses(world, "A-2-7", "A-2-8") == [SeatStatus.AVAILABLE] * 2
    again = await app.place_order(world.buyer(2), world.session_id, ["A-2-7", "A-2-8"])
    assert again.status is OrderStatus.CREATED


async def test_the_buyer_cancels_an_unpaid_order_and_the_seats_are_free(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-1-3"])
    cancelled = await app.cancel_order(buyer, order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    await app.seating.flush_events()
    assert await statuses(world, "A-1-3") == [SeatStatus.AVAILABLE]
    paid = await app.place_order(buyer, world.session_id, ["A-1-4"])
    await app.pay(buyer, paid.order_id)
    with pytest.raises(InvalidTransition):
        await app.cancel_order(buyer, paid.order_id)


async def test_an_organizer_refund_voids_the_tickets_and_resells_the_seats(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["B-1-2", "B-1-3"])
    await app.pay(buyer, order.order_id)
    with pytest.raises(Forbidden):
        await app.refund_order(buyer, order.order_id)
    stranger = Requester(world.buyer(9).user_id, world.organizer.roles)
    with pytest.raises(NotFound):
        await app.refund_order(stranger, order.order_id)

    refunded = await app.refund_order(world.organizer, order.order_id)

    assert refunded.status is OrderStatus.REFUNDED
    assert {t.status for t in (await app.list_tickets(buyer)).items} == {TicketStatus.VOIDED}
    await app.seating.flush_events()
    assert await statuses(world, "B-1-2", "B-1-3") == [SeatStatus.AVAILABLE] * 2
    again = await app.place_order(world.buyer(2), world.session_id, ["B-1-2"])
    await app.pay(world.buyer(2), again.order_id)
    assert len((await app.list_tickets(world.buyer(2))).items) == 1
    with pytest.raises(InvalidTransition):
        await app.refund_order(world.admin, order.order_id)


async def test_a_ticket_checks_in_once(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-1"])
    await app.pay(buyer, order.order_id)
    (ticket,) = (await app.list_tickets(buyer)).items
    with pytest.raises(Forbidden):
        await app.check_in(buyer, ticket.qr_code)
    used = await app.check_in(world.staff, ticket.qr_code)
    assert used.status is TicketStatus.USED
    with pytest.raises(AlreadyUsed):
        await app.check_in(world.staff, ticket.qr_code)
    with pytest.raises(NotFound):
        await app.check_in(world.staff, "no-such-code-0000000000")
    await app.refund_order(world.organizer, order.order_id)
    with pytest.raises(TicketVoided):
        await app.check_in(world.admin, ticket.qr_code)


async def test_nobody_sees_or_touches_another_buyers_order(world: World) -> None:
    app, owner, other = world.app, world.buyer(1), world.buyer(2)
    order = await app.place_order(owner, world.session_id, ["A-1-7"])
    for attempt in (app.get_order, app.cancel_order, app.pay):
        with pytest.raises(NotFound):
            await attempt(other, order.order_id)
    assert (await app.get_order(world.admin, order.order_id)).order_id == order.order_id
    with pytest.raises(NotFound):
        await app.get_order(owner, OrderId(UUID(int=5)))
    assert (await app.get_order(owner, order.order_id)).status is OrderStatus.CREATED


@pytest.mark.parametrize(
    ("seats", "error"),
    [
        (["A-1-1", "B-1-1"], SeatsSpanAreas),
        (["A-9-1"], UnknownSeats),
        (["A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-1-5"], TooManySeats),
        (["not a seat"], Exception),
        ([], Exception),
    ],
)
async def test_bad_seat_requests_are_refused_and_hold_nothing(
    world: World, seats: list[str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await world.app.place_order(world.buyer(1), world.session_id, seats)
    views = await world.app.seats(world.session_id)
    assert {v.status for v in views} == {SeatStatus.AVAILABLE}


async def test_no_order_outside_the_sale_window_or_for_an_unknown_session(world: World) -> None:
    with pytest.raises(NotFound):
        await world.app.place_order(world.buyer(1), SessionId(UUID(int=77)), ["A-1-1"])
    world.clock.advance(60 * 60 * 24 * 6)
    with pytest.raises(SaleNotOpen):
        await world.app.place_order(world.buyer(1), world.session_id, ["A-1-1"])


async def test_a_restarted_partition_rebuilds_holds_and_sales_before_answering(
    world: World,
) -> None:
    app, buyer = world.app, world.buyer(1)
    sold = await app.place_order(buyer, world.session_id, ["A-1-1"])
    await app.pay(buyer, sold.order_id)
    held = await app.place_order(buyer, world.session_id, ["A-1-2"])
    partition = app.seating.router.partition_of(world.session_id, AreaId("A"))

    await app.seating.restart_partition(partition)

    with pytest.raises(SeatsUnavailable) as refused:
        await app.place_order(world.buyer(2), world.session_id, ["A-1-1", "A-1-2", "A-1-3"])
    assert set(refused.value.seat_ids) == {"A-1-1", "A-1-2"}
    await app.pay(buyer, held.order_id)
    assert (await app.get_order(buyer, held.order_id)).status is OrderStatus.COMPLETED


async def test_a_late_payer_is_found_when_the_order_expires_and_refunded_once(
    world: World,
) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-9"])
    pending = await app.pay(buyer, order.order_id, outcome="succeed_after_expiry")
    assert pending.status is PaymentStatus.PENDING
    first = await app.sweep()
    assert first.payments_reconciled == 0  # not yet: the hold is still live
    world.clock.advance(TTL + timedelta(seconds=1))
    report = await app.sweep()
    assert report.orders_expired == 1
    # the payments role asked the provider as the order expired: refunded before the next sweep
    assert report.payments_reconciled == 0
    mock = app.payments.provider("mock")
    assert isinstance(mock, MockPaymentProvider)
    assert [t for t, _ in mock.refunds] == [pending.provider_transaction_id]
    await app.sweep()
    payment = await app.payments.reconcile(pending.payment_id)
    assert payment.status is PaymentStatus.REFUNDED
    assert [t for t, _ in mock.refunds] == [pending.provider_transaction_id]
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.EXPIRED
    assert (await app.list_tickets(buyer)).items == ()


def mock_of(world: World) -> MockPaymentProvider:
    mock = world.app.payments.provider("mock")
    assert isinstance(mock, MockPaymentProvider)
    return mock


def notice(world: World, transaction: str, status: str, event: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"event_id": event, "transaction_id": transaction, "status": status})
    return {"X-Mock-Signature": mock_of(world).sign(body.encode())}, body.encode()


async def test_paying_again_while_the_payment_waits_answers_the_same_payment(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-1"])
    first = await app.pay(buyer, order.order_id, outcome="delay")
    again = await app.pay(buyer, order.order_id, outcome="delay")
    assert again.payment_id == first.payment_id
    assert again.provider_transaction_id == first.provider_transaction_id
    assert mock_of(world).create_calls == 2  # asked again, with the same idempotency key
    assert mock_of(world).captured is None


async def test_an_order_that_ends_while_its_payment_waits_cancels_the_payment(
    world: World,
) -> None:
    """No money can come in later for an order that expired: the provider is told."""
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-2"])
    pending = await app.pay(buyer, order.order_id, outcome="delay")
    world.clock.advance(TTL)
    await app.sweep()
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.EXPIRED
    transaction = pending.provider_transaction_id
    assert transaction is not None
    at_provider = await mock_of(world).verify_payment(transaction)
    assert (at_provider.status.value, at_provider.failure_reason) == ("failed", "cancelled")
    with pytest.raises(PaymentProviderError):
        mock_of(world).settle(transaction, succeed=True)  # the buyer's late try is refused
    assert (await app.payments.reconcile(pending.payment_id)).status is PaymentStatus.FAILED


async def test_news_of_a_refund_before_news_of_the_payment_gives_the_order_nothing(
    world: World,
) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-3"])
    pending = await app.pay(buyer, order.order_id, outcome="delay")
    transaction = pending.provider_transaction_id
    assert transaction is not None
    await app.handle_webhook("mock", *notice(world, transaction, "refunded", "evt_r"))
    await app.handle_webhook("mock", *notice(world, transaction, "succeeded", "evt_s"))
    payment = await app.payments.reconcile(pending.payment_id)
    assert payment.status is PaymentStatus.REFUNDED
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.FAILED
    assert (await app.list_tickets(buyer)).items == ()
    assert await statuses(world, "A-2-3") == [SeatStatus.AVAILABLE]


async def test_a_refund_made_at_the_provider_refunds_the_completed_order(world: World) -> None:
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-4"])
    paid = await app.pay(buyer, order.order_id)
    transaction = paid.provider_transaction_id
    assert transaction is not None
    await app.handle_webhook("mock", *notice(world, transaction, "refunded", "evt_dashboard"))
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.REFUNDED
    assert [t.status for t in (await app.list_tickets(buyer)).items] == [TicketStatus.VOIDED]
    assert await statuses(world, "A-2-4") == [SeatStatus.AVAILABLE]
    assert mock_of(world).refunds == []  # refunded at the provider, not by us again


async def test_an_order_remembered_before_it_expired_gets_no_tickets_and_the_money_back(
    world: World,
) -> None:
    """The inline step starts from the order as the request stored it, not as it is now.

    The buyer's payment waits at the provider; meanwhile the order expires (stored
    alone, before any handler of its expiry ran: the hold is still there). The money
    then comes in within the scope that remembered the order awaiting payment: the
    sale goes through on the stale copy, the completion finds the order changed, and
    the step, reading it afresh, gives the seats and the money back.
    """
    app, buyer = world.app, world.buyer(1)
    order = await app.place_order(buyer, world.session_id, ["A-2-9"])
    waiting = await app.pay(buyer, order.order_id, outcome="delay")
    assert waiting.status is PaymentStatus.PENDING
    awaiting = await app.get_order(buyer, order.order_id)
    async with app.catalog._uow() as uow:
        stored = await uow.orders.get(order.order_id)
        assert stored is not None
        stored.expire(now=stored.expires_at, ids=uuid4)
        await uow.orders.save(stored)
        await uow.commit()

    transaction = waiting.provider_transaction_id or ""
    mock_of(world).settle(transaction, succeed=True)  # the money comes in

    with stored_scope():
        remember(order.order_id, awaiting)  # as the paying request stored it
        paid = await app.payments.record(
            waiting.payment_id,
            ProviderPayment(provider_transaction_id=transaction, status=ProviderStatus.SUCCEEDED),
        )
    await app.seating.flush_events()

    assert paid.status is PaymentStatus.SUCCEEDED
    assert (await app.get_order(buyer, order.order_id)).status is OrderStatus.EXPIRED
    assert (await app.list_tickets(buyer)).items == ()
    async with app.catalog._uow() as uow:
        refunded = await uow.payments.get(waiting.payment_id)
    assert refunded is not None
    assert refunded.status is PaymentStatus.REFUNDED
    assert mock_of(world).captured is None
    assert await statuses(world, "A-2-9") == [SeatStatus.AVAILABLE]
