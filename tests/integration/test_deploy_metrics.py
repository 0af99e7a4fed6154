"""The operators' alert rules and dashboard name only metrics the processes export.

A production deployment (``openticket serve`` and an ``openticket worker`` with
``OPENTICKET_WORKER_METRICS_PORT``) sells a seat; both ``/metrics`` are scraped, and every
metric that ``deploy/prometheus/rules.yaml`` or ``deploy/grafana/openticket.json`` reads
must be among the samples they export (a histogram ``x`` as ``x_bucket``, ``x_sum`` and
``x_count``, a counter ``x`` as ``x_total``), or be a recording rule of rules.yaml, or
Prometheus's own ``up`` of a job that deploy/prometheus/prometheus.yaml scrapes. A rule
or panel naming a metric nobody exports would never fire or always show "No data".
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import _free_port
from tests.integration.nats.test_worker_processes import _buyer, _session

if TYPE_CHECKING:
    from tests.conftest import ServeProcess, WorkerProcess

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.redis]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yaml"
SCRAPES = DEPLOY / "prometheus" / "prometheus.yaml"
DASHBOARD = DEPLOY / "grafana" / "openticket.json"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")  # label matchers and Grafana's ${variables}
_RANGES = re.compile(r"\[[^\[\]]*\]")  # [5m], [$__rate_interval], subqueries' [10m:1m]
_IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:$])[A-Za-z_:][A-Za-z0-9_:]*")
_CLAUSES = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_JOB = re.compile(r'\bjob\s*=\s*"([^"]+)"')


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: ``openticket_*``, recording rules
    (names with a colon) and ``up``; label names, values, functions and keywords aside."""
    bare = _STRING.sub('""', expr)
    bare = _BRACES.sub("", bare)
    bare = _RANGES.sub("", bare)
    bare = _CLAUSES.sub("", bare)
    return {
        name
        for name in _IDENTIFIER.findall(bare)
        if name.startswith("openticket_") or ":" in name or name == "up"
    }


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row keeps its own


def expressions() -> dict[str, str]:
    """Every PromQL expression of the rules and of the dashboard's panels, by where."""
    found = {
        f"rules.yaml {rule.get('alert') or rule.get('record')}": str(rule["expr"])
        for rule in _rules()
    }
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found[f"openticket.json {panel['title']!r} {target.get('refId')}"] = target["expr"]
    return found


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def exported(exposition: str) -> set[str]:
    """The series names a Prometheus text exposition declares or has samples of.

    A family with labels and no child yet (a waiting room's gauge before any session
    has one) is declared by its ``# TYPE`` line: its series appear once it has values.
    """
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        suffixes = _SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_metric_names_are_read_out_of_promql() -> None:
    """The parser the check relies on finds metric names, and only them."""
    expr = (
        'sum by (le, route) (rate(openticket_http_request_seconds_bucket{route="/api/orders",'
        'job=~"openticket_x|y"}[$__rate_interval])) / on (route) group_left '
        'route:openticket_http_requests:rate5m > 1/60 and absent(up{job="openticket-api"} == 1)'
        " and deriv(openticket_consumer_pending[10m:1m]) > 0"
    )
    assert metric_names(expr) == {
        "openticket_http_request_seconds_bucket",
        "route:openticket_http_requests:rate5m",
        "up",
        "openticket_consumer_pending",
    }


def _counted(exposition: str, family: str, **labels: str) -> bool:
    """Whether a sample of the counter ``family`` with ``labels`` is at least 1."""
    return any(
        sample.value >= 1 and labels.items() <= sample.labels.items()
        for found in text_string_to_metric_families(exposition)
        if found.name == family
        for sample in found.samples
    )


async def _purchase(http: httpx.AsyncClient) -> None:
    """A buyer holds two seats of the demo sale's first session, and pays."""
    session_id = await _session(http)
    me = await _buyer(http, "watched")
    placed = await http.post(
        "/api/orders", json={"session_id": session_id, "seat_ids": ["A-3-1", "A-3-2"]}, headers=me
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    paid = await http.post(
        f"/api/orders/{order_id}/payments", json={"provider": "mock"}, headers=me
    )
    assert paid.status_code in (200, 201, 202), paid.text
    deadline = time.monotonic() + 20
    while (await http.get(f"/api/orders/{order_id}", headers=me)).json()["status"] != "completed":
        assert time.monotonic() < deadline, "the order never completed"
        await asyncio.sleep(0.2)


async def test_every_metric_the_rules_and_dashboard_read_is_exported(
    production: dict[str, str], serve_process: ServeProcess, worker_process: WorkerProcess
) -> None:
    """After a purchase, the API and a worker export every metric the deploy files read."""
    port = _free_port()
    env = {**production, "OPENTICKET_WORKER_METRICS_PORT": str(port)}
    last = int(env["OPENTICKET_PARTITIONS"]) - 1
    scrapes = yaml.safe_load(SCRAPES.read_text())
    jobs = {job["job_name"]: job for job in scrapes["scrape_configs"]}
    assert set(jobs) == {"openticket-api", "openticket-worker"}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())
    assert [SCRAPES.parent / name for name in scrapes["rule_files"]] == [RULES]
    worker_scrape = f"http://127.0.0.1:{port}/metrics"
    with serve_process(production, demo=True) as (api, _), worker_process(env, f"0-{last}", "d1"):
        async with httpx.AsyncClient(base_url=api, timeout=15) as http:
            await _purchase(http)
            deadline = time.monotonic() + 20
            while True:  # the hold (decided in the worker) and the completed order counted
                worker_text = (await http.get(worker_scrape)).text
                api_text = (await http.get("/metrics")).text
                if _counted(
                    api_text + worker_text, "openticket_orders", status="completed"
                ) and _counted(worker_text, "openticket_holds", outcome="granted"):
                    break
                assert time.monotonic() < deadline, api_text + worker_text
                await asyncio.sleep(0.2)
    names = exported(api_text) | exported(worker_text)
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used: dict[str, set[str]] = {}
    for where, expr in expressions().items():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
        for job in _JOB.findall(expr):
            assert job in jobs, f"{where} reads job {job!r}, which prometheus.yaml does not scrape"
    missing = {
        name: sorted(where)
        for name, where in used.items()
        if name not in names and name not in recorded and name != "up"
    }
    assert not missing, f"read but exported by neither the API nor a worker: {missing}"
    # the check saw the metrics that matter: the SLOs' and the workers'
    assert {
        "openticket_http_request_seconds_bucket",
        "openticket_seat_hold_seconds_bucket",
        "openticket_double_sales_prevented_total",
        "openticket_holds_total",
        "openticket_orders_total",
        "openticket_worker_partitions_owned",
        "openticket_partitions_configured",
        "openticket_worker_lease_moves_total",
        "openticket_worker_mailbox_depth",
        "openticket_worker_batches_total",
        "openticket_worker_commands_decided_total",
        "openticket_consumer_pending",
        "openticket_consumer_ack_pending",
        "openticket_parked_messages",
        "up",
    } <= set(used)
