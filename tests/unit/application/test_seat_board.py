"""A session's stock as the waiting room counts it: priced seats, available, held, sold."""

from __future__ import annotations

from openticket import bootstrap
from openticket.adapters.memory import FakeClock
from openticket.application.seating.board import Stock
from openticket.entrypoints.settings import Settings
from openticket.testing.world import World, build_world


async def test_the_stock_counts_priced_seats_by_what_can_still_happen_to_them(
    world: World,
) -> None:
    app, session = world.app, world.session_id
    assert await app.board.stock(session) == Stock(sellable=25, held=0, sold=0)
    held = await app.place_order(world.buyer(1), session, ["A-1-1", "A-1-2"])
    paid = await app.place_order(world.buyer(2), session, ["B-1-1"])
    await app.pay(world.buyer(2), paid.order_id)
    assert await app.board.stock(session) == Stock(sellable=22, held=2, sold=1)
    await app.cancel_order(world.buyer(1), held.order_id)
    stock = await app.board.stock(session)
    assert stock == Stock(sellable=24, held=0, sold=1)
    assert not stock.sold_out
    # the stock agrees with the seat map it summarises
    seats = await app.seats(session)
    assert stock.sellable == sum(s.status == "available" for s in seats)


async def test_unpriced_seats_are_not_stock_and_a_session_sells_out() -> None:
    clock = FakeClock()
    app = bootstrap(Settings(partitions=2), clock=clock)
    world = await build_world(app, clock, unpriced_areas=["A"])
    await app.start(sweeper=False)
    try:
        assert await app.board.stock(world.session_id) == Stock(sellable=5, held=0, sold=0)
        for n in range(5):
            order = await app.place_order(world.buyer(n), world.session_id, [f"B-1-{n + 1}"])
            await app.pay(world.buyer(n), order.order_id)
        stock = await app.board.stock(world.session_id)
        assert stock == Stock(sellable=0, held=0, sold=5)
        assert stock.sold_out
    finally:
        await app.stop()
