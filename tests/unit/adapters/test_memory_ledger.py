"""The audit as a library, on the embedded platform: a sale's books read from memory."""

from __future__ import annotations

from openticket.adapters.memory import FakeClock, MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.settings import Settings
from openticket.testing.world import build_world


async def test_a_sale_in_memory_is_audited_from_its_committed_rows() -> None:
    container = build_container(
        Settings(hold_ttl_seconds=120), clock=FakeClock(), password_hasher=MemoryPasswordHasher()
    )
    app = container.app()
    await app.start(sweeper=False)  # the order below must stay open when time passes
    try:
        world = await build_world(app, container.clock())
        paid = await app.place_order(world.buyer(1), world.session_id, ["A-1-1", "A-1-2"])
        await app.pay(world.buyer(1), paid.order_id)
        unpaid = await app.place_order(world.buyer(2), world.session_id, ["A-1-3"])
        report = await container.auditor().audit(world.session_id)
        assert report.holds
        assert (report.purchases, report.seats_sold, dict(report.orders)) == (
            1,
            2,
            {"completed": 1, "created": 1},
        )
        assert report.messages_parked is None
        container.clock().advance(3600)
        stuck = await container.auditor().audit(world.session_id)
        assert [(f.check, f.subject) for f in stuck.findings] == [
            ("order_past_expiry", str(unpaid.order_id))
        ]
    finally:
        await app.stop()
