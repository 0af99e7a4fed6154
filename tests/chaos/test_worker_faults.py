"""Reliability 12 and 29 (second half): a worker killed, a worker paused past its lease.

The other worker takes the partitions over within the lease; a paused worker that wakes
finds its lease gone (by its own clock, at once) and decides nothing from what it knew
until it claims a partition again, under a new epoch, and rebuilds; the lock store's
compare-and-set on each seat and the database fence whatever an old owner still sends.
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

    # The paused worker's actors decide nothing once its lease has lapsed by its own
    # clock (it answers "try again"), and rebuild under the epoch of a new claim: no seat
    # stays sold in the lock store to an order that was refunded.
    await sale_through(sale, "worker SIGSTOP past its lease", pause)
    assert first.proc is not None
    assert first.proc.poll() is None, first.tail()  # it woke up and went on
