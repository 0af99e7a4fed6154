"""Render deploy/grafana/openticket.json from a real Prometheus, without Grafana: a PNG.

    PYTHONPATH=src python deploy/grafana/render.py --out docs/screenshots/dashboard.png
    python deploy/grafana/render.py --prometheus-url http://127.0.0.1:9090 --minutes 30

By default it runs what it shows, on this machine's loopback, and removes it afterwards:
a production deployment of OpenTicket on the local PostgreSQL, Redis and NATS (a schema,
key prefix and NATS prefix of its own; ``openticket migrate``, one ``openticket serve
--demo`` and two ``openticket worker`` processes with ``OPENTICKET_WORKER_METRICS_PORT``),
and Debian's ``prometheus`` (temporary storage, scraping every second with
deploy/prometheus/rules.yaml loaded). Buyers then buy seats over HTTP for
``--load-seconds`` (one order in ten asks for seats already sold, and is refused) while
a new buyer a second joins the demo's waiting room; at 45 % of the run the second worker
stops and its partitions move to the first, and at 70 % it starts again.

Each panel's PromQL is then asked of Prometheus (``/api/v1/query_range``, a point a
second; Grafana's ``$__rate_interval`` becomes ``--rate-interval``), and the answers
are drawn as Grafana lays the panels out (``gridPos``): line charts in inline SVG with
their legends and threshold lines, and stat panels. Headless Chromium (Debian's, driven
by Playwright) takes the screenshot.

With ``--prometheus-url`` it only reads the last ``--minutes`` of that Prometheus.

Every process it starts is stopped when it ends, fails or runs past ``--timeout``.

One module, over 500 lines: a script run by hand, whose deployment, load, queries and
drawing serve one picture; split, its parts would be imported by nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import redis.asyncio as aioredis
from playwright.sync_api import sync_playwright

from openticket.testing.processes import LoggedProcess as Process
from openticket.testing.sales import SaleSetup

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLI = [sys.executable, "-m", "openticket.entrypoints.cli"]
DEMO_PASSWORD = "render-demo-password"  # noqa: S105  # a throwaway deployment's
BUYER_PASSWORD = "render-buyer-password"  # noqa: S105  # its buyers'
PARTITIONS = 8
PALETTE = (
    "#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0",
    "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477",
)  # fmt: skip
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def say(message: str) -> None:
    """Progress, on stderr."""
    print(f"[render {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the processes ----------------------------------------------------------------------------


@dataclass
class Deployment:
    """The production profile on loopback, and Prometheus scraping it."""

    args: argparse.Namespace
    logs: Path
    prefix: str = field(default_factory=lambda: f"R{uuid.uuid4().hex[:8].upper()}")
    processes: list[Process] = field(default_factory=list)
    api_port: int = 0
    worker_ports: list[int] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    api: Process | None = None
    prometheus_url: str = ""

    @property
    def env(self) -> dict[str, str]:
        """What every OpenTicket process of the deployment shares."""
        return {
            "OPENTICKET_DATABASE_URL": self.args.database_url,
            "OPENTICKET_DATABASE_SCHEMA": self.prefix.lower(),
            "OPENTICKET_REDIS_URL": self.args.redis_url,
            "OPENTICKET_REDIS_PREFIX": f"{self.prefix}:",
            "OPENTICKET_NATS_URL": self.args.nats_url,
            "OPENTICKET_NATS_PREFIX": self.prefix,
            "OPENTICKET_LOCK_STORE": "redis",
            "OPENTICKET_PARTITIONS": str(PARTITIONS),
            "OPENTICKET_WORKER_LEASE_SECONDS": "3",
            "OPENTICKET_DEMO_PASSWORD": DEMO_PASSWORD,
            "OPENTICKET_JWT_SECRET": "render-processes-share-this-signing-secret",
            "OPENTICKET_RATE_LIMIT_PER_IP": "0",
            "OPENTICKET_RATE_LIMIT_PER_USER": "0",
            "OPENTICKET_BOT_DEFENCE": "false",  # one loopback address plays every buyer
        }

    @contextlib.contextmanager
    def running(self) -> Iterator[Deployment]:
        """Everything started; stopped and removed when the block ends, however."""
        try:
            say(f"schema, key and NATS prefix {self.prefix}; migrating")
            done = subprocess.run(  # noqa: S603  # our own command
                [*CLI, "migrate"],
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"openticket migrate failed:\n{done.stderr}")
            half = PARTITIONS // 2
            for n, partitions in ((1, f"0-{half - 1}"), (2, f"{half}-{PARTITIONS - 1}")):
                port = free_port()
                worker = Process(
                    f"worker-{n}",
                    [*CLI, "worker", "--partitions", partitions, "--id", f"worker-{n}"],
                    {**self.env, "OPENTICKET_WORKER_METRICS_PORT": str(port)},
                    self.logs,
                )
                self.processes.append(worker)
                worker.start("Ctrl+C to stop")
                self.workers.append(worker)
                self.worker_ports.append(port)
            self.api_port = free_port()
            api = Process(
                "api", [*CLI, "serve", "--port", str(self.api_port), "--demo"], self.env, self.logs
            )
            self.processes.append(api)
            self.api = api
            api.start("press Ctrl+C")
            deadline = time.monotonic() + 60
            while not _ready(f"http://127.0.0.1:{self.api_port}/health/ready"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API never got ready:\n{api.tail()}")
                time.sleep(0.2)
            say(f"API on {self.api_port}, workers' metrics on {self.worker_ports}")
            self._start_prometheus()
            yield self
        finally:
            for process in reversed(self.processes):
                process.stop()
            asyncio.run(self._remove())

    def _start_prometheus(self) -> None:
        port = self.args.prometheus_port or free_port()
        storage = self.logs / "tsdb"
        config = self.logs / "prometheus.yaml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(HERE.parent / "prometheus" / "rules.yaml")],
                    "scrape_configs": [
                        {
                            "job_name": "openticket-api",
                            "scrape_timeout": "1s",
                            "static_configs": [{"targets": [f"127.0.0.1:{self.api_port}"]}],
                        },
                        {
                            "job_name": "openticket-worker",
                            "scrape_timeout": "1s",
                            "static_configs": [
                                {"targets": [f"127.0.0.1:{p}" for p in self.worker_ports]}
                            ],
                        },
                    ],
                },
                indent=1,
            )
        )
        prometheus = Process(
            "prometheus",
            [
                self.args.prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            {},
            self.logs,
        )
        self.processes.append(prometheus)
        prometheus.start("", within=5)
        self.prometheus_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not _ready(f"{self.prometheus_url}/-/ready"):
            if time.monotonic() > deadline or prometheus.proc is None:
                raise RuntimeError(f"Prometheus never got ready:\n{prometheus.tail()}")
            if prometheus.proc.poll() is not None:
                raise RuntimeError(f"Prometheus exited:\n{prometheus.tail()}")
            time.sleep(0.2)
        say(f"Prometheus on {self.prometheus_url}, scraping every second")

    async def _remove(self) -> None:
        """Drop what the run left: the schema, the Redis keys, the NATS streams and buckets."""
        with contextlib.suppress(Exception):
            async with await psycopg.AsyncConnection.connect(
                self.args.database_url, autocommit=True
            ) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.prefix.lower()}" CASCADE')
        with contextlib.suppress(Exception):
            client = aioredis.from_url(self.args.redis_url)
            async for key in client.scan_iter(match=f"*{self.prefix}:*", count=1000):
                await client.delete(key)
            await client.aclose()
        with contextlib.suppress(Exception):
            nc = await nats.connect(self.args.nats_url, connect_timeout=5)
            js = nc.jetstream()
            for info in await js.streams_info():
                name = info.config.name or ""
                if self.prefix in name.upper():
                    await js.delete_stream(name)
            await nc.close()
        say("removed the run's schema, keys, streams and buckets")


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# --- the load -----------------------------------------------------------------------------------


async def _sale(client: httpx.AsyncClient) -> tuple[str, list[list[str]]]:
    """A session on sale of a venue of 8000 seats; its id and its seats, area by area."""
    setup = SaleSetup(client, "ABCDEFGH", 25, 40)
    await setup.sign_in(DEMO_PASSWORD)
    await setup.make_event("Render Live")
    session_id = await setup.open_session(max_seats_per_order=4, max_seats_per_user=1000)
    seats = [
        item["seat_id"]
        for item in (await client.get(f"/api/sessions/{session_id}/seats")).json()["items"]
    ]
    random.Random(7).shuffle(seats)  # noqa: S311  # a load, not a secret
    by_area: dict[str, list[str]] = {}
    for seat in seats:  # an order's seats are in one area
        by_area.setdefault(seat.split("-")[0], []).append(seat)
    return session_id, list(by_area.values())


async def _sign_up(client: httpx.AsyncClient, n: int) -> dict[str, str]:
    """A new buyer's authorization header."""
    email = f"buyer{n}-{uuid.uuid4().hex[:6]}@render.example.com"
    made = await client.post(
        "/api/auth/register",
        json={"email": email, "password": BUYER_PASSWORD, "display_name": f"Buyer {n}"},
    )
    made.raise_for_status()
    token = await client.post("/api/auth/token", json={"email": email, "password": BUYER_PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def _move_partitions(deployment: Deployment, seconds: float) -> None:
    """Stop the second worker at 45 % of ``seconds``, start it again at 70 %."""
    second = deployment.workers[1]
    await asyncio.sleep(seconds * 0.45)
    say("stopping worker-2: its partitions move to worker-1")
    await asyncio.to_thread(second.stop)
    await asyncio.sleep(seconds * 0.25)
    say("starting worker-2 again")
    await asyncio.to_thread(second.start, "Ctrl+C to stop")


async def _queue(
    deployment: Deployment, client: httpx.AsyncClient, until: float, count: Callable[[str], None]
) -> None:
    """A new buyer a second joins the demo's waiting room, until ``until``."""
    printed = deployment.api.log.read_text(errors="replace") if deployment.api else ""
    found = re.search(r"waiting room: (\S+)", printed)
    n = 0
    while found is not None and time.monotonic() < until:
        n += 1
        me = await _sign_up(client, 1000 + n)
        joined = await client.post(f"/api/sessions/{found[1]}/queue", headers=me)
        count(f"queue join {joined.status_code}")
        await asyncio.sleep(1)


async def sell(deployment: Deployment, seconds: float, buyers: int) -> dict[str, int]:
    """Buyers buy two seats at a time for ``seconds``; what happened, counted.

    One order in ten asks for seats already sold, and is refused. The second worker
    stops at 45 % of the run and starts again at 70 %.
    """
    base = f"http://127.0.0.1:{deployment.api_port}"
    outcomes: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        session_id, free = await _sale(client)
        tokens = [await _sign_up(client, n) for n in range(buyers)]
        sold: list[list[str]] = []
        began = time.monotonic()
        deadline = began + seconds
        chance = random.Random(11)  # noqa: S311  # a load, not a secret

        def count(what: str) -> None:
            outcomes[what] = outcomes.get(what, 0) + 1

        async def buyer(me: dict[str, str]) -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                looked = 0
                while time.monotonic() < deadline and any(len(area) >= 2 for area in free):
                    await asyncio.sleep(chance.uniform(0.05, 0.4))  # a person's pace
                    if looked % 10 == 0:  # the seat map, now and then
                        await http.get(f"/api/sessions/{session_id}/seats")
                    looked += 1
                    if sold and chance.random() < 0.1:  # someone else's seats: refused
                        wanted = chance.choice(sold)
                    else:
                        area = max(free, key=len)
                        wanted = [area.pop(), area.pop()]
                    placed = await http.post(
                        "/api/orders",
                        json={"session_id": session_id, "seat_ids": wanted},
                        headers=me,
                    )
                    if placed.status_code != 201:
                        count(f"order {placed.status_code}")
                        continue
                    paid = await http.post(
                        f"/api/orders/{placed.json()['order_id']}/payments",
                        json={"provider": "mock"},
                        headers=me,
                    )
                    count("purchased" if paid.status_code == 201 else f"payment {paid.status_code}")
                    sold.append(wanted)

        say(f"{buyers} buyers buy for {seconds:.0f} s; others join a waiting room")
        await asyncio.gather(
            _move_partitions(deployment, seconds),
            _queue(deployment, client, began + seconds * 0.6, count),
            *(buyer(me) for me in tokens),
        )
    return outcomes


# --- Prometheus's answers -----------------------------------------------------------------------


@dataclass
class Series:
    """One line of a panel."""

    name: str
    points: list[tuple[float, float]]


def _legend(template: str, labels: dict[str, str], fallback: str) -> str:
    if not template:
        return fallback
    text = template
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return text


def query_panels(
    dashboard: dict[str, Any], prometheus: str, start: float, end: float, rate_interval: str
) -> dict[int, list[Series]]:
    """Each panel's series, by panel id, over [start, end] at a point a second or so."""
    step = max(1.0, math.ceil((end - start) / 400))
    found: dict[int, list[Series]] = {}
    with httpx.Client(base_url=prometheus, timeout=30) as client:
        for panel in dashboard["panels"]:
            lines: list[Series] = []
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", rate_interval)
                answer = client.get(
                    "/api/v1/query_range",
                    params={"query": expr, "start": start, "end": end, "step": step},
                )
                answer.raise_for_status()
                for result in answer.json()["data"]["result"]:
                    labels = result["metric"]
                    lines.append(
                        Series(
                            _legend(target.get("legendFormat", ""), labels, expr),
                            [(float(t), float(v)) for t, v in result["values"]],
                        )
                    )
            found[panel["id"]] = sorted(lines, key=lambda s: s.name)
    return found


# --- the page -----------------------------------------------------------------------------------

COLUMN = 74  # px per gridPos column (24 of them)
ROW = 34  # px per gridPos row


def _format(value: float, unit: str) -> str:
    if math.isnan(value) or math.isinf(value):
        return "–"
    if unit == "s":
        if value == 0:
            return "0"
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    suffix = "/s" if unit == "reqps" else ""
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k{suffix}"
    if value == int(value):
        return f"{int(value)}{suffix}"
    return f"{value:.2f}{suffix}" if abs(value) < 10 else f"{value:.1f}{suffix}"


def _threshold(panel: dict[str, Any]) -> float | None:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    if defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", "off") == "off":
        return None
    steps = defaults.get("thresholds", {}).get("steps", [])
    values = [s["value"] for s in steps if s.get("value") is not None]
    return float(values[0]) if values else None


def _peak(line: Series) -> float:
    return max((v for _, v in line.points if math.isfinite(v)), default=0.0)


def _nice(step: float) -> float:
    """The step of 1, 2, 2.5 or 5 times a power of ten at or above ``step``."""
    power: float = 10.0 ** math.floor(math.log10(step))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= step * 0.999)


def _chart(panel: dict[str, Any], lines: list[Series], width: int, height: int) -> str:
    """An inline SVG line chart: axes, grid, lines, the threshold line."""
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    left, right, top, bottom = 62, 10, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in lines for _, v in s.points if math.isfinite(v)]
    times = [t for s in lines for t, _ in s.points]
    threshold = _threshold(panel)
    if not values or not times:
        return (
            f'<svg width="{width}" height="{height}"><text x="{width / 2}" y="{height / 2}" '
            'text-anchor="middle" fill="#8e8e8e">No data</text></svg>'
        )
    low = min(0.0, *values)
    high = max(values + ([threshold * 1.15] if threshold is not None else []))
    step = _nice((high - low) / 4 if high > low else 1.0)
    low = math.floor(low / step) * step
    high = max(math.ceil(high * 1.02 / step) * step, low + step)
    t0, t1 = min(times), max(times)
    steps = sorted(b - a for s in lines for (a, _), (b, _) in itertools.pairwise(s.points))
    gap = 1.5 * (steps[0] if steps else 1.0)
    t1 = t1 if t1 > t0 else t0 + 1

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(v: float) -> float:
        return top + plot_h - (v - low) / (high - low) * plot_h

    parts = [f'<svg width="{width}" height="{height}" font-size="11" fill="#c7d0d9">']
    for i in range(round((high - low) / step) + 1):
        v = low + step * i
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#2c3235"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f"{html.escape(_format(v, unit))}</text>"
        )
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        label = datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text x="{x(t):.1f}" y="{height - 5}" text-anchor="{anchor}">{label}</text>')
    colored = [(PALETTE[n % len(PALETTE)], line) for n, line in enumerate(lines)]
    colored.sort(
        key=lambda pair: max((v for _, v in pair[1].points if math.isfinite(v)), default=0)
    )
    for color, line in colored:
        runs: list[list[str]] = [[]]
        before = -math.inf
        for t, v in line.points:
            if (not math.isfinite(v) or t - before > gap) and runs[-1]:
                runs.append([])  # no value, or none for a while (a process was away)
            if math.isfinite(v):
                runs[-1].append(f"{x(t):.1f},{y(v):.1f}")
            before = t
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif run:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.8" '
                    f'points="{" ".join(run)}"/>'
                )
    if threshold is not None:
        ty = y(threshold)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" '
            'stroke="#f2495c" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{left + plot_w - 4}" y="{ty - 4:.1f}" text-anchor="end" fill="#f2495c">'
            f"{html.escape(_format(threshold, unit))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _stat(panel: dict[str, Any], lines: list[Series], width: int, height: int) -> str:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    last = [v for s in lines for _, v in s.points[-1:] if math.isfinite(v)]
    value = sum(last) if last else math.nan
    color = "#73bf69"
    for step in steps:
        if step.get("value") is None or (math.isfinite(value) and value >= step["value"]):
            color = {"green": "#37872d", "red": "#c4162a"}.get(step["color"], step["color"])
    shown = _format(value, "none")
    return (
        f'<div class="stat" style="background:{color};width:{width}px;height:{height}px">'
        f"{html.escape(shown)}</div>"
    )


def render_html(
    dashboard: dict[str, Any], data: dict[int, list[Series]], caption: str
) -> tuple[str, int, int]:
    """The page, its width and height in pixels."""
    boxes = []
    bottom = 0
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        left, top = grid["x"] * COLUMN, grid["y"] * ROW
        width, height = grid["w"] * COLUMN - 6, grid["h"] * ROW - 6
        bottom = max(bottom, top + height)
        title = html.escape(panel["title"])
        style = f"left:{left}px;top:{top}px;width:{width}px;height:{height}px"
        if panel["type"] == "row":
            boxes.append(f'<div class="row" style="{style}">{title}</div>')
            continue
        lines = data.get(panel["id"], [])
        body_h = height - 30
        if panel["type"] == "stat":
            body = _stat(panel, lines, width - 16, body_h - 8)
        else:
            per_line = max(1, (width - 16) // 190)
            shown = lines[: per_line * 3]
            legend_rows = max(1, math.ceil(len(shown) / per_line))
            chart = _chart(panel, lines, width - 8, body_h - legend_rows * 17 - 6)
            entries = "".join(
                f'<span><i style="background:{PALETTE[n % len(PALETTE)]}"></i>'
                f"{html.escape(s.name)}</span>"
                for n, s in enumerate(shown)
            )
            more = len(lines) - len(shown)
            if more > 0:
                entries += f"<span>+{more} more</span>"
            body = f'{chart}<div class="legend">{entries}</div>'
        boxes.append(
            f'<div class="panel" style="{style}"><div class="title">{title}</div>{body}</div>'
        )
    width = 24 * COLUMN
    height = bottom + 60
    page = f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin:0; background:#111217; color:#ccccdc; font:13px Inter,Helvetica,Arial,sans-serif; }}
header {{ padding:10px 14px; font-size:18px; }} header small {{ color:#8e8e8e; font-size:12px; }}
.board {{ position:relative; margin:0 8px; height:{bottom}px; }}
.panel {{ position:absolute; background:#181b1f; border:1px solid #2c3235; border-radius:3px;
  overflow:hidden; padding:0 4px; box-sizing:border-box; }}
.title {{ font-weight:600; padding:6px 4px; height:18px; white-space:nowrap; overflow:hidden; }}
.row {{ position:absolute; font-size:16px; font-weight:600; padding-top:6px; }}
.legend {{ font-size:11px; display:flex; flex-wrap:wrap; gap:2px 14px; padding:2px 6px; }}
.legend span {{ max-width:180px; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }}
.legend i {{ display:inline-block; width:12px; height:3px; margin:0 5px 3px 0; }}
.stat {{ margin:4px; display:flex; align-items:center; justify-content:center; font-size:56px;
  font-weight:600; color:#fff; border-radius:3px; }}
</style></head><body><header>{html.escape(dashboard["title"])}
<small>&nbsp; {html.escape(caption)}</small></header>
<div class="board">{"".join(boxes)}</div></body></html>"""
    return page, width + 16, height


def screenshot(page_html: str, out: Path, width: int, height: int, chromium: str) -> None:
    """Headless Chromium's picture of the page."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_content(page_html)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


# --- the command --------------------------------------------------------------------------------


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Render the Grafana dashboard from a real Prometheus to a PNG: by default it runs "
            "a production deployment on loopback under load with Prometheus scraping it."
        )
    )
    parser.add_argument("--dashboard", type=Path, default=HERE / "openticket.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "dashboard.png")
    parser.add_argument("--html", type=Path, help="also keep the rendered page here")
    parser.add_argument(
        "--prometheus-url", help="read this Prometheus instead of running a deployment"
    )
    parser.add_argument("--minutes", type=float, default=15, help="with --prometheus-url")
    parser.add_argument("--load-seconds", type=float, default=120, help="at most 180")
    parser.add_argument("--buyers", type=int, default=8, help="buyers at once")
    parser.add_argument("--rate-interval", default="15s", help="Grafana's $__rate_interval")
    parser.add_argument("--timeout", type=float, default=420, help="seconds for the whole run")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    parser.add_argument("--prometheus-port", type=int, default=19090)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "OPENTICKET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("OPENTICKET_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    )
    parser.add_argument(
        "--nats-url", default=os.environ.get("OPENTICKET_TEST_NATS_URL", "nats://127.0.0.1:4222")
    )
    args = parser.parse_args(argv)
    if not 10 <= args.load_seconds <= 180:
        parser.error("--load-seconds: from 10 to 180")
    return args


class _OutOfTime(Exception):
    pass


def _out_of_time(signum: int, frame: object) -> None:
    raise _OutOfTime


def main(argv: list[str] | None = None) -> int:
    """Run (or read), query, draw, screenshot."""
    args = _arguments(argv)
    dashboard = json.loads(args.dashboard.read_text())
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(int(args.timeout))
    try:
        if args.prometheus_url:
            end = time.time()
            start = end - args.minutes * 60
            data = query_panels(dashboard, args.prometheus_url, start, end, args.rate_interval)
            caption = f"rendered from {args.prometheus_url}, the last {args.minutes:g} minutes"
        else:
            with (
                tempfile.TemporaryDirectory(prefix="openticket-render-") as logs,
                Deployment(args, Path(logs)).running() as deployment,
            ):
                time.sleep(3)  # a few scrapes before the sale
                start = time.time()
                outcomes = asyncio.run(sell(deployment, args.load_seconds, args.buyers))
                time.sleep(5)  # the last scrapes
                end = time.time()
                say(f"sold: {outcomes}; asking Prometheus")
                data = query_panels(
                    dashboard, deployment.prometheus_url, start - 3, end, args.rate_interval
                )
            counted = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items()))
            caption = (
                f"rendered from Prometheus (scraping every 1 s) over a {args.load_seconds:.0f} s"
                f" run on loopback: 1 API, 2 workers ({PARTITIONS} partitions; worker-2 stopped"
                f" at 45 %, back at 70 %), {args.buyers} buyers: {counted};"
                f" $__rate_interval = {args.rate_interval}"
            )
        page, width, height = render_html(dashboard, data, caption)
        if args.html:
            args.html.write_text(page)
        screenshot(page, args.out, width, height, args.chromium)
    except _OutOfTime:
        say(f"out of time after {args.timeout:.0f} s; everything started was stopped")
        return 1
    finally:
        signal.alarm(0)
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
