"""Traces across processes: one purchase in the production profile is one trace.

``openticket serve`` and two ``openticket worker`` processes on PostgreSQL, Redis and
NATS export their spans over OTLP/HTTP (``OPENTICKET_OTLP_ENDPOINT``) to a loopback
collector (:mod:`tests.otlp`). The buyer's client traces too: it sends one W3C
``traceparent`` with each request of its purchase, as a traced browser or gateway does.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.conftest import _free_port
from tests.integration.nats.test_worker_processes import _buyer, _sample, _session
from tests.otlp import ReceivedSpan, collecting, tree

if TYPE_CHECKING:
    from tests.conftest import ServeProcess, WorkerProcess

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.redis]

SAMPLE = Path(os.environ.get("OPENTICKET_TRACE_SAMPLE", "build/traces/purchase.txt"))
"""Where the purchase's trace is written as a tree (docs/tracing.md shows one)."""


async def _settled(http: httpx.AsyncClient, scrapes: dict[str, int], *, each: int) -> None:
    """Wait until each worker owns its preferred partitions (no handover under way)."""

    async def owned(worker: str) -> float:
        text = (await http.get(f"http://127.0.0.1:{scrapes[worker]}/metrics")).text
        return _sample(text, "openticket_worker_partitions_owned", worker=worker)

    deadline = time.monotonic() + 20
    while [await owned(worker) for worker in scrapes] != [each] * len(scrapes):
        assert time.monotonic() < deadline, "the workers never settled their partitions"
        await asyncio.sleep(0.2)


def _keep_sample(spans: list[ReceivedSpan]) -> None:
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    SAMPLE.write_text(tree(spans) + "\n")


def _names(spans: list[ReceivedSpan], service: str) -> set[str]:
    return {s.name for s in spans if s.service == service}


async def test_one_purchase_is_one_connected_trace_across_the_api_and_the_workers(
    production: dict[str, str], serve_process: ServeProcess, worker_process: WorkerProcess
) -> None:
    trace_id, root = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    traced = {"traceparent": f"00-{trace_id}-{root}-01"}
    last = int(production["OPENTICKET_PARTITIONS"]) - 1
    with collecting() as collector:
        env = {**production, "OPENTICKET_OTLP_ENDPOINT": collector.endpoint}
        scrapes = {"t1": _free_port(), "t2": _free_port()}
        with (
            serve_process(env, demo=True) as (api, printed),
            worker_process(
                {**env, "OPENTICKET_WORKER_METRICS_PORT": str(scrapes["t1"])},
                f"0-{last // 2}",
                "t1",
            ),
            worker_process(
                {**env, "OPENTICKET_WORKER_METRICS_PORT": str(scrapes["t2"])},
                f"{last // 2 + 1}-{last}",
                "t2",
            ),
        ):
            assert f"traces to {collector.endpoint}" in printed
            async with httpx.AsyncClient(base_url=api, timeout=15) as http:
                await _settled(http, scrapes, each=(last + 1) // 2)
                session_id = await _session(http)
                me = await _buyer(http, "traced")
                placed = await http.post(
                    "/api/orders",
                    json={"session_id": session_id, "seat_ids": ["A-7-1", "A-7-2"]},
                    headers={**me, **traced},
                )
                assert placed.status_code == 201, placed.text
                order_id = placed.json()["order_id"]
                paid = await http.post(
                    f"/api/orders/{order_id}/payments",
                    json={"provider": "mock"},
                    headers={**me, **traced},
                )
                assert paid.status_code == 201, paid.text
                order = await http.get(f"/api/orders/{order_id}", headers=me)
                assert order.json()["status"] == "completed"
        # the processes stopped: each sent what its exporter still held
        spans = [s for s in collector.spans if s.trace_id == trace_id]

    _keep_sample(spans)
    ids = {s.span_id for s in spans}
    orphans = [s for s in spans if s.parent_id not in ids | {root}]
    assert not orphans, f"spans outside the trace's tree: {orphans}\n{tree(spans)}"

    api_spans = _names(spans, "openticket-api")
    worker_spans = _names(spans, "openticket-worker")
    assert {
        "POST /api/orders",
        "POST /api/orders/{order_id}/payments",
        "seat hold",
        "seat sell",
        "postgres transaction",
        "payment mock create",
    } <= api_spans, tree(spans)
    assert any(name.startswith("publish Order") for name in api_spans), tree(spans)
    assert {"seat hold decide", "seat sell decide"} <= worker_spans, tree(spans)
    assert any(name.startswith("process ") for name in worker_spans), tree(spans)
    # each decision is the child of the API's command span, across the process boundary
    by_id = {s.span_id: s for s in spans}
    for decided in (s for s in spans if s.name.endswith(" decide")):
        asked = by_id[decided.parent_id]
        assert (asked.service, asked.kind) == ("openticket-api", "client")
        assert asked.name == decided.name.removesuffix(" decide")
    assert not any(s.error for s in spans), tree(spans)
