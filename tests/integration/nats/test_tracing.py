"""Traces across processes: one purchase in the production profile is one trace.

``openticket serve`` and two ``openticket worker`` processes on PostgreSQL, Redis and
NATS export their spans over OTLP/HTTP (``OPENTICKET_OTLP_ENDPOINT``) to a loopback
collector (:mod:`tests.otlp`). The buyer's client traces too: it sends one W3C
``traceparent`` with each request of its purchase, as a traced browser or gateway does.
The same purchase is then made with the API and a worker built in this process, the
SDK's in-memory exporter holding every span.
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

from openticket.adapters import tracing
from openticket.adapters.nats.worker_node import WorkerNode
from openticket.application.facade import OpenTicket
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.demo import ensure_demo_accounts, seed_demo
from openticket.entrypoints.settings import Settings

if TYPE_CHECKING:
    from tests.conftest import ServeProcess, SpanReader, WorkerProcess

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


async def test_in_one_process_the_sdk_s_memory_exporter_holds_the_purchase_s_whole_trace(
    production: dict[str, str], spans: SpanReader
) -> None:
    """The API and a worker built by the container in this process, on the real servers:
    the worker's spans continue the API's only through what NATS carried."""
    settings = Settings.from_env(production)
    worker = build_container(settings, process="worker")
    api = build_container(settings)
    worker_app: OpenTicket = worker.app()
    await worker_app.start(sweeper=False)
    node: WorkerNode = worker.worker_node(
        worker_id="in-memory", preferred=list(range(settings.partitions))
    )
    await node.start()
    try:
        await api.postgres_database().start()
        await api.redis().start()
        await api.nats().start()
        tickets, identity = api.app(), api.identity()
        await ensure_demo_accounts(identity, settings.demo_password)
        demo = await seed_demo(tickets, identity, api.clock(), settings.demo_password)
        assert demo is not None
        spans()  # the seeding's spans are not the purchase's
        app = api.http_app()
        async with (
            app.lifespan(),  # starts and stops the platform, as uvicorn's lifespan does
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api.test"
            ) as http,
        ):
            me = await _buyer(http, "in-memory")
            with tracing.span("buyer's purchase", tracing.SpanKind.CLIENT) as root:
                traced: dict[str, str] = {}
                tracing.inject(traced)  # as a traced browser sends it
                placed = await http.post(
                    "/api/orders",
                    json={"session_id": str(demo.session_id), "seat_ids": ["A-6-1"]},
                    headers={**me, **traced},
                )
                assert placed.status_code == 201, placed.text
                paid = await http.post(
                    f"/api/orders/{placed.json()['order_id']}/payments",
                    json={"provider": "mock"},
                    headers={**me, **traced},
                )
                assert paid.status_code == 201, paid.text
    finally:
        await node.stop()
        await worker_app.stop()

    trace_id = root.get_span_context().trace_id
    mine = [s for s in spans() if s.context.trace_id == trace_id]
    ids = {s.context.span_id for s in mine}
    assert all(s.parent is None or s.parent.span_id in ids for s in mine)  # one tree
    names = {s.name for s in mine}
    assert {
        "buyer's purchase",
        "POST /api/orders",
        "POST /api/orders/{order_id}/payments",
        "seat hold",
        "seat hold decide",
        "seat sell",
        "seat sell decide",
        "postgres transaction",
        "payment mock create",
    } <= names, names
    by_id = {s.context.span_id: s for s in mine}
    for decided in (s for s in mine if s.name.endswith(" decide")):
        assert decided.parent is not None
        assert decided.parent.is_remote  # read off the NATS message
        assert by_id[decided.parent.span_id].name == decided.name.removesuffix(" decide")
