"""Loopback payment providers for the tests: Stripe (localstripe, extended) and LINE Pay.

``stripe_server`` runs ``tests/payments/stripe_server.py`` as a process of its own on a
free port, once per test session (every test uses fresh ids). ``StripeBuyer`` plays the
buyer's browser: what Stripe.js does with a card, done with the same API calls.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openticket.application.ports.payments import ProviderPayment

STRIPE_KEY = "sk_test_openticket_loopback"
WORKING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[str]:
    """The base URL of the loopback Stripe (localstripe with our additions)."""
    port = free_port()
    script = Path(__file__).with_name("stripe_server.py")
    proc = subprocess.Popen(  # noqa: S603  # our own test server
        [sys.executable, str(script), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                httpx.get(f"{base}/v1/charges", auth=(STRIPE_KEY, ""), timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    pytest.fail(f"the loopback Stripe did not start: {out}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class StripeBuyer:
    """The buyer's browser: a card attached to the intent, then the intent confirmed."""

    def __init__(self, base: str) -> None:
        self._base = base

    async def approve(self, payment: ProviderPayment) -> None:
        await self.pay(payment.provider_transaction_id, WORKING_CARD)

    async def decline(self, payment: ProviderPayment) -> None:
        await self.pay(payment.provider_transaction_id, DECLINED_CARD)

    async def pay(self, intent: str, card: str) -> dict[str, object]:
        async with httpx.AsyncClient(base_url=self._base, auth=(STRIPE_KEY, "")) as http:
            method = await http.post(
                "/v1/payment_methods",
                data={
                    "type": "card",
                    "card[number]": card,
                    "card[exp_month]": "12",
                    "card[exp_year]": "2034",
                    "card[cvc]": "123",
                },
            )
            method.raise_for_status()
            attached = await http.post(
                f"/v1/payment_intents/{intent}", data={"payment_method": method.json()["id"]}
            )
            attached.raise_for_status()
            confirmed = await http.post(f"/v1/payment_intents/{intent}/confirm")
            body: dict[str, object] = confirmed.json()
            return body


async def stripe_webhook_to(base: str, url: str, secret: str) -> None:
    """Have the loopback Stripe deliver its events to ``url``, signed with ``secret``."""
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.post(
            f"/_config/webhooks/{abs(hash(url))}", data={"url": url, "secret": secret}
        )
        answer.raise_for_status()
