"""A flash sale driven over HTTP by a few hundred concurrent buyers, with a fault in it.

The organizer sets up a venue of 2,000 seats and a session on sale; buyers sign up, then
race: hold a random seat, pay with the mock (most succeed, some are declined, some pay
only after their hold ran out — the late payers), and go again. A fault runs in a
thread at a chosen moment. Every request is logged (when, what, status, latency), so
the scenario can say what buyers saw before, during and after the fault and how long
the platform took to sell again.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import httpx

from openticket.testing.sales import SaleSetup

PASSWORD = "chaos-buyer-password"
AREAS = ("A", "B", "C", "D")
ROWS, SEATS_PER_ROW = 20, 25  # 2,000 seats
LATE, DECLINE = 0.05, 0.05
"""Shares of buyers who pay after their hold expired, and whose card is declined."""
READING = (1.0, 3.0)
"""Seconds a buyer takes between a hold and paying for it (uniform)."""
BETWEEN = (2.0, 5.0)
"""Seconds before a buyer goes for the next seat (uniform)."""


@attrs.frozen
class Request:
    """One request a buyer made."""

    at: float
    """Seconds since the sale began."""
    op: str
    status: int
    """HTTP status, or 0 when no answer came (connection refused, timeout)."""
    seconds: float
    code: str = ""
    """The problem's ``code`` of an error answer."""


@attrs.define
class SaleLog:
    """Everything the buyers saw, and when the fault ran."""

    requests: list[Request] = attrs.field(factory=list)
    fault_began: float | None = None
    fault_ended: float | None = None
    purchases: int = 0
    """Payments the API answered as succeeded."""
    late_payers: int = 0
    """Payments the API took whose money arrives only after the hold expired."""

    def phase(self, request: Request) -> str:
        """``before``, ``during`` or ``after`` the fault."""
        if self.fault_began is None or request.at < self.fault_began:
            return "before"
        if self.fault_ended is None or request.at <= self.fault_ended:
            return "during"
        return "after"

    def summary(self) -> dict[str, Any]:
        """Statuses and latency per phase, and how long selling took to resume."""
        phases: dict[str, Any] = {}
        for name in ("before", "during", "after"):
            seen = [r for r in self.requests if self.phase(r) == name]
            latencies = sorted(r.seconds for r in seen)
            phases[name] = {
                "requests": len(seen),
                "statuses": dict(
                    sorted(Counter(f"{r.status} {r.code}".strip() for r in seen).items())
                ),
                "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1)
                if latencies
                else None,
            }
        resumed = None
        if self.fault_ended is not None:
            held_after = [
                r.at
                for r in self.requests
                if r.op == "pay" and r.status == 201 and r.at > self.fault_ended
            ]
            resumed = round(min(held_after) - self.fault_ended, 2) if held_after else None
        return {
            "purchases": self.purchases,
            "late_payers": self.late_payers,
            "fault_seconds": None
            if self.fault_began is None or self.fault_ended is None
            else round(self.fault_ended - self.fault_began, 2),
            "selling_again_after_s": resumed,
            **phases,
        }


async def set_up_sale(client: httpx.AsyncClient, organizer_password: str) -> str:
    """A venue of 2,000 seats, an event priced per area and a session on sale now."""
    setup = SaleSetup(client, AREAS, ROWS, SEATS_PER_ROW)
    await setup.sign_in(organizer_password)
    await setup.make_event("Chaos Live")
    return await setup.open_session(max_seats_per_order=4)


async def sign_up(client: httpx.AsyncClient, count: int) -> list[dict[str, str]]:
    """``count`` buyer accounts (a few at a time: each costs an argon2 hash), signed in."""
    gate = asyncio.Semaphore(4)

    async def one(n: int) -> dict[str, str]:
        async with gate:
            email = f"buyer{n}@chaos.example.com"
            made = await client.post(
                "/api/auth/register",
                json={"email": email, "password": PASSWORD, "display_name": f"Buyer {n}"},
            )
            assert made.status_code == 201, made.text
            token = await client.post(
                "/api/auth/token", json={"email": email, "password": PASSWORD}
            )
            return {"Authorization": f"Bearer {token.json()['access_token']}"}

    return list(await asyncio.gather(*(one(n) for n in range(count))))


def _outcome(roll: float) -> dict[str, str]:
    """The mock outcome a buyer picks: mostly none (paid at once), some late, some declined."""
    if roll < LATE:
        return {"outcome": "succeed_after_expiry"}
    if roll < LATE + DECLINE:
        return {"outcome": "decline"}
    return {}


@attrs.define
class _Clerk:
    """Sends a buyer's requests and writes each into the log."""

    log: SaleLog
    began: float

    async def call(
        self, client: httpx.AsyncClient, op: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        start = time.monotonic()
        try:
            answer = await client.request(method, url, **kw)
        except httpx.HTTPError:
            self.log.requests.append(Request(start - self.began, op, 0, time.monotonic() - start))
            return None
        code = ""
        if answer.status_code >= 400 and "problem" in answer.headers.get("content-type", ""):
            code = str(answer.json().get("code", ""))
        self.log.requests.append(
            Request(start - self.began, op, answer.status_code, time.monotonic() - start, code)
        )
        return answer

    def fault_in_a_thread(self, fault: Callable[[], None], at: float) -> threading.Thread:
        def run() -> None:
            time.sleep(at)
            self.log.fault_began = time.monotonic() - self.began
            try:
                fault()
            finally:
                self.log.fault_ended = time.monotonic() - self.began

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


async def flash_sale(
    base: str,
    session_id: str,
    buyers: list[dict[str, str]],
    *,
    concurrency: int,
    seconds: float,
    fault: Callable[[], None] | None = None,
    fault_at: float = 0.0,
    seed: int = 14,
) -> SaleLog:
    """Buyers race for ``seconds``; ``fault`` runs in a thread ``fault_at`` seconds in."""
    log = SaleLog()
    clerk = _Clerk(log, time.monotonic())
    seats = [
        f"{a}-{r}-{n}"
        for a in AREAS
        for r in range(1, ROWS + 1)
        for n in range(1, SEATS_PER_ROW + 1)
    ]
    random.Random(seed).shuffle(seats)
    free = list(seats)
    thread = clerk.fault_in_a_thread(fault, fault_at) if fault else None

    async def buyer(n: int, client: httpx.AsyncClient) -> None:
        who = buyers[n % len(buyers)]
        mine = random.Random(seed * 1000 + n)
        while time.monotonic() - clerk.began < seconds and free:
            seat = free.pop()
            held = await clerk.call(
                client, "hold", "POST", "/api/orders",
                json={"session_id": session_id, "seat_ids": [seat]}, headers=who,
            )  # fmt: skip
            if held is None or held.status_code != 201:
                if held is None or held.status_code >= 500:
                    free.insert(0, seat)  # not refused by someone else's hold: try it later
                    wait = 0.3 if held is None else float(held.headers.get("retry-after", "0.3"))
                    await asyncio.sleep(min(wait, 1.0))
                continue
            await asyncio.sleep(mine.uniform(*READING))  # reads the order, types the card
            outcome = _outcome(mine.random())
            paid = await clerk.call(
                client, "pay", "POST", f"/api/orders/{held.json()['order_id']}/payments",
                json={"provider": "mock", **outcome}, headers=who,
            )  # fmt: skip
            if paid is not None and paid.status_code == 201 and outcome:
                log.late_payers += outcome["outcome"] == "succeed_after_expiry"
            if (
                paid is not None
                and paid.status_code == 201
                and paid.json()["status"] == "succeeded"
            ):
                log.purchases += 1
            await asyncio.sleep(mine.uniform(*BETWEEN))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:
        await asyncio.gather(*(buyer(n, client) for n in range(concurrency)))
    if thread is not None:
        thread.join(timeout=60)
    return log
