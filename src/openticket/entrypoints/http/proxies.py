"""Who the client is: the TCP peer, or, through a trusted proxy, the client it forwarded.

Behind a load balancer every request comes from the balancer's address, so the rate
limits, the logs and the WebSocket caps would see one client. The balancer names the
real one in ``X-Forwarded-For`` (each hop appends the address it was called from) and
the scheme it was called with in ``X-Forwarded-Proto``. Anyone can send those headers,
so they are believed only from the peers listed in ``OPENTICKET_TRUSTED_PROXIES``;
from anyone else (and with none listed, the default) they are ignored and the peer is
the client (reliability check 33).

The middleware rewrites ``scope["client"]`` and ``scope["scheme"]`` in place, so
everything after it, Litestar's ``request.client`` included, sees the forwarded
client. A header that cannot be read changes nothing: never a 500.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from openticket.application.gate.waiting_room import Client

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PEER = "openticket.peer"
"""The scope key keeping the TCP peer once the forwarded client replaced it."""

_MAX_HOPS = 20
"""Entries of ``X-Forwarded-For`` looked at, from the right: a longer chain is forged."""

_SECURE = {"http": "https", "ws": "wss"}
_PLAIN = {"https": "http", "wss": "ws"}


DEVICE_HEADER = "x-device-id"
"""The client's own device id (a page or an app keeps one): one more bot signal."""
_MAX_DEVICE_ID = 128


@functools.lru_cache(maxsize=4096)
def is_loopback(address: str) -> bool:
    """Whether ``address`` is a loopback address (cached: every request asks)."""
    parsed = parse_address(address)
    return parsed is not None and parsed.is_loopback


def client_of(connection: ASGIConnection[Any, Any, Any, Any], *, count_loopback: bool) -> Client:
    """Where a request comes from, for the bot defence.

    The address is the client the proxy middleware settled on; a loopback client is
    left uncounted unless ``count_loopback`` (off in the embedded profile, where it is
    the developer). The device id is the client's ``X-Device-Id``, cut to 128 characters.
    """
    peer = connection.client
    address = peer.host if peer is not None else None
    if address is not None and not count_loopback and is_loopback(address):
        address = None
    device = connection.headers.get(DEVICE_HEADER)
    return Client(address=address, device_id=device[:_MAX_DEVICE_ID] if device else None)


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``), or None."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, _ = text[1:].partition("]")
        text = host if bracket else ""
    elif text.count(":") == 1:  # IPv4 with a port; IPv6 has two colons at least
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The load balancers whose forwarded headers are believed (addresses or networks)."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as e:
                raise ValueError(
                    f"OPENTICKET_TRUSTED_PROXIES: {entry!r} is not an address or a network (CIDR)"
                ) from e
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: IPAddress | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return address is not None and any(address in network for network in self._networks)

    def client_of(self, peer: str, forwarded_for: str) -> str:
        """The client behind ``peer``: the right-most forwarded address not itself a proxy.

        Each trusted hop appended the address that called it, so reading from the
        right, the first address that is not a trusted proxy is the client; what lies
        left of it was written by the client and proves nothing. An entry that cannot
        be read stops the walk at the hop that forwarded it.
        """
        client = peer
        if not self.trusts(parse_address(peer)):
            return client
        hops = [hop for hop in forwarded_for.split(",") if hop.strip()][-_MAX_HOPS:]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(address):
                break
        return client


def _header(scope: Scope, name: bytes) -> str:
    """Every value of a request header, comma-joined ('' when absent or not Latin-1)."""
    values = [value for key, value in scope.get("headers", ()) if key == name]
    try:
        return ",".join(value.decode("latin-1") for value in values)
    except (AttributeError, UnicodeDecodeError):
        return ""


def forward(scope: Scope, proxies: TrustedProxies) -> None:
    """Put the forwarded client and scheme into ``scope`` if its peer is a trusted proxy.

    Idempotent: a scope already looked at keeps its first answer.
    """
    if not proxies or PEER in scope:
        return
    peer: Any = scope.get("client")
    scope[PEER] = peer  # type: ignore[literal-required]  # our own key, beside ASGI's
    if not peer or not proxies.trusts(parse_address(str(peer[0]))):
        return
    client = proxies.client_of(str(peer[0]), _header(scope, b"x-forwarded-for"))
    scope["client"] = (client, 0)
    proto = _header(scope, b"x-forwarded-proto").rpartition(",")[2].strip().lower()
    scheme = scope.get("scheme", "http")
    if proto == "https":
        scope["scheme"] = _SECURE.get(scheme, scheme)
    elif proto == "http":
        scope["scheme"] = _PLAIN.get(scheme, scheme)


class ForwardedClientMiddleware(ASGIMiddleware):
    """Behind a trusted proxy, the client and scheme it forwarded replace the peer's."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    def __init__(self, proxies: TrustedProxies) -> None:
        self._proxies = proxies

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Rewrite the scope, then pass the request on."""
        forward(scope, self._proxies)
        await next_app(scope, receive, send)
