"""A loopback Stripe for the tests: ``localstripe``, with what it lacks added here.

Run it as a process of its own: ``python tests/payments/stripe_server.py --port N``.
It serves localstripe's API (PaymentIntents, PaymentMethods, Refunds, webhooks to a
configured URL, signed with ``Stripe-Signature``) and adds what Stripe does and
localstripe does not, so that our adapter meets Stripe's documented behaviour:

* **Idempotency keys**: a POST with an ``Idempotency-Key`` already seen (for the same
  API key) is answered with the stored response and ``Idempotent-Replayed: true``;
  the same key with other parameters is refused with 400 ``idempotency_error``;
  requests racing on one key are answered one after the other.
* **``charge.refunded``** events: a refund sends one, with the charge marked
  ``refunded`` and its ``amount_refunded``, as Stripe does.
* **Fault injection**: ``POST /_config/delay_next`` ``{"path": "...", "seconds": s}``
  makes the next POST whose path contains ``path`` take effect and then answer ``s``
  seconds late — a client time-out after the server did the work.
* Nothing is written to disk (localstripe keeps a pickle in /tmp otherwise), and
  webhooks leave after 50 ms instead of a second.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import types
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from localstripe import resources, server, webhooks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_stored: dict[tuple[str, str], tuple[str, web.Response]] = {}
"""(API key, idempotency key) → (fingerprint of the request, the response given)."""
_locks: dict[tuple[str, str], asyncio.Lock] = {}
_delays: list[tuple[str, float]] = []


def _replay(response: web.Response) -> web.Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    headers["Idempotent-Replayed"] = "true"
    return web.Response(status=response.status, body=response.body, headers=headers)


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stripe's idempotent requests, for POSTs carrying ``Idempotency-Key``."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await _delayed(request, handler)
    body = await request.read()
    scope = (request.headers.get("Authorization", ""), key)
    fingerprint = hashlib.sha256(request.path.encode() + b"\n" + body).hexdigest()
    async with _locks.setdefault(scope, asyncio.Lock()):
        stored = _stored.get(scope)
        if stored is not None:
            if stored[0] != fingerprint:
                return web.json_response(
                    {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the"
                            " same parameters they were first used with.",
                        }
                    },
                    status=400,
                )
            return _replay(stored[1])
        response = await handler(request)
        if isinstance(response, web.Response) and response.status < 500:
            _stored[scope] = (fingerprint, response)
    return await _late(request, response)  # a late answer holds no other request up


async def _delayed(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await _late(request, await handler(request))


async def _late(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Answer late if a delay was asked for this path (after the work was done)."""
    for n, (fragment, seconds) in enumerate(_delays):
        if request.method == "POST" and fragment in request.path:
            del _delays[n]
            await asyncio.sleep(seconds)
            break
    return response


async def delay_next(request: web.Request) -> web.Response:
    """``POST /_config/delay_next`` ``{"path": ..., "seconds": ...}``."""
    asked = await request.json()
    _delays.append((str(asked["path"]), float(asked["seconds"])))
    return web.Response()


def _refund_with_event() -> None:
    """Refunds also send ``charge.refunded`` (the charge refunded, how much in all)."""
    create = resources.Refund._api_create.__func__  # type: ignore[attr-defined]

    def _api_create(cls: type[resources.Refund], **data: Any) -> Any:
        refund = create(cls, **data)
        charge = resources.Charge._api_retrieve(refund.charge)
        refunded = sum(
            r.amount
            for key, r in resources.store.items()
            if key.startswith("refund:") and r.charge == charge.id
        )
        event = resources.Event("charge.refunded", charge)
        event.data["object"].update(refunded=refunded >= charge.amount, amount_refunded=refunded)
        webhooks.schedule_webhook(event)
        return refund

    resources.Refund._api_create = classmethod(_api_create)  # type: ignore[assignment]


def _quick_webhooks() -> None:
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        await real_sleep(min(seconds, 0.05))

    webhooks.asyncio = types.SimpleNamespace(  # type: ignore[attr-defined]
        sleep=sleep, ensure_future=asyncio.ensure_future
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    resources.store.dump_to_disk = lambda: None
    _refund_with_event()
    _quick_webhooks()
    app = server.app
    app.middlewares.insert(0, idempotency)
    app.router.add_post("/_config/delay_next", delay_next)
    print(json.dumps({"listening": args.port}), flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
