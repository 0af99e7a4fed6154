"""The client behind trusted proxies, for HTTP requests and WebSocket connections alike."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, websocket_listener
from litestar.testing import AsyncTestClient

from openticket.entrypoints.http.proxies import (
    ForwardedClientMiddleware,
    TrustedProxies,
    forward,
    parse_address,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.1", "198.51.100.1"),
        (" 198.51.100.1:8443 ", "198.51.100.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("unknown", None),
        ("", None),
        ("[2001:db8::1", None),
        ("1.2.3.4.5", None),
    ],
)
def test_addresses_are_read_as_proxies_write_them(text: str, expected: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address else None) == expected


def test_a_bad_trusted_proxy_setting_names_the_variable() -> None:
    with pytest.raises(ValueError, match=r"OPENTICKET_TRUSTED_PROXIES: 'lb\.internal'"):
        TrustedProxies(["10.0.0.0/8", "lb.internal"])


def websocket_scope(peer: str, **headers: str) -> dict[str, Any]:
    return {
        "type": "websocket",
        "scheme": "ws",
        "path": "/ws/me/orders",
        "client": (peer, 5000),
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


def test_a_websocket_through_a_trusted_proxy_gets_the_forwarded_client_and_scheme() -> None:
    scope = websocket_scope("10.0.0.2", x_forwarded_for="198.51.100.4", x_forwarded_proto="https")
    forward(scope, TrustedProxies(["10.0.0.0/24"]))  # type: ignore[arg-type]
    assert scope["client"] == ("198.51.100.4", 0)
    assert scope["scheme"] == "wss"


def test_a_websocket_from_anyone_else_keeps_its_peer() -> None:
    scope = websocket_scope(
        "203.0.113.9", x_forwarded_for="198.51.100.4", x_forwarded_proto="https"
    )
    forward(scope, TrustedProxies(["10.0.0.0/24"]))  # type: ignore[arg-type]
    assert scope["client"] == ("203.0.113.9", 5000)
    assert scope["scheme"] == "ws"


async def test_the_middleware_rewrites_websocket_connections_too() -> None:
    @websocket_listener("/whoami")
    async def whoami(data: str, socket: Any) -> str:
        return f"{socket.client.host} {socket.scope['scheme']}"

    app = Litestar([whoami], middleware=[ForwardedClientMiddleware(TrustedProxies(["10.0.0.2"]))])

    async def behind_the_balancer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope["client"] = ("10.0.0.2", 5000)  # the test client's peer is not an address
        await app(scope, receive, send)

    async with AsyncTestClient(app=behind_the_balancer) as client:  # type: ignore[arg-type]
        ws = await client.websocket_connect(
            "/whoami", headers={"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Proto": "https"}
        )
        with ws:
            ws.send_text("?")
            assert ws.receive_text() == "198.51.100.4 wss"
