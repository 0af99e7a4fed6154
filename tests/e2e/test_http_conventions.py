"""What browsers and proxies expect of the API (issue 13, point 5; reliability check 33).

The client's address behind proxies, CORS, compression, validators and caching,
security headers, ``Retry-After`` on 503, the metrics' content type and the docs page
served from the package.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import attrs
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from openticket.application.ports.errors import AdapterUnavailable
from openticket.entrypoints.container import Container

from .conftest import PASSWORD, Api, in_process

pytestmark = pytest.mark.e2e

ORIGIN = "https://tickets.example.com"


@attrs.frozen
class Edge:
    """An app built with settings of a test's own, and its test client."""

    app: Litestar
    client: AsyncTestClient[Any]
    container: Container
    session_id: str

    def peer(self, address: str) -> httpx.AsyncClient:
        """A client whose requests come from the TCP peer ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40_000))
        return httpx.AsyncClient(transport=transport, base_url="http://api.test")


@contextlib.asynccontextmanager
async def edge(request: pytest.FixtureRequest, **settings: Any) -> AsyncIterator[Edge]:
    """The API on the storage under test, with ``settings`` on top of the e2e ones."""
    async with in_process(request, **settings) as api:
        assert api.container is not None
        yield Edge(api.container.http_app(), api.client, api.container, api.session_id)


# --- the client's address (reliability 33) ------------------------------------------------


async def test_a_forged_x_forwarded_for_keeps_the_peers_own_limit(
    request: pytest.FixtureRequest,
) -> None:
    async with edge(request, rate_limit_per_ip=3) as api, api.peer("203.0.113.7") as forger:
        statuses = [
            (
                await forger.get("/api/events", headers={"X-Forwarded-For": f"198.51.100.{n}"})
            ).status_code
            for n in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        async with api.peer("203.0.113.8") as neighbour:
            assert (await neighbour.get("/api/events")).status_code == 200


async def test_through_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    request: pytest.FixtureRequest,
) -> None:
    settings = {"rate_limit_per_ip": 3, "trusted_proxies": ("10.0.0.0/8", "192.0.2.1")}
    async with edge(request, **settings) as api, api.peer("10.1.2.3") as balancer:

        async def from_client(forwarded_for: str) -> int:
            headers = {"X-Forwarded-For": forwarded_for}
            return (await balancer.get("/api/events", headers=headers)).status_code

        assert [await from_client("198.51.100.1") for _ in range(3)] == [200] * 3
        assert await from_client("198.51.100.1") == 429
        # what the client wrote left of what the proxies appended proves nothing
        assert await from_client("203.0.113.99, 198.51.100.1") == 429
        # hops that are trusted proxies themselves are skipped
        assert await from_client("198.51.100.1, 192.0.2.1") == 429
        assert [await from_client("198.51.100.2") for _ in range(3)] == [200] * 3
        assert await from_client("[2001:db8::1]:4711") == 200


async def test_malformed_forwarded_headers_from_a_trusted_proxy_change_nothing(
    request: pytest.FixtureRequest,
) -> None:
    async with (
        edge(request, trusted_proxies=("10.0.0.0/8",)) as api,
        api.peer("10.0.0.1") as balancer,
    ):
        for forwarded_for in ("not-an-address", "", " , ,", "[::1", "999.1.1.1", "1.2.3.4:x:y"):
            answer = await balancer.get(
                "/api/events",
                headers={"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "gopher"},
            )
            assert answer.status_code == 200, forwarded_for
            assert "strict-transport-security" not in answer.headers


async def test_the_scheme_comes_from_a_trusted_proxy_only(request: pytest.FixtureRequest) -> None:
    async with edge(request, trusted_proxies=("10.0.0.1",)) as api:
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"}
        async with api.peer("10.0.0.1") as balancer:
            behind_tls = await balancer.get("/api/events", headers=headers)
        async with api.peer("203.0.113.7") as stranger:
            forged = await stranger.get("/api/events", headers=headers)
        assert behind_tls.headers["strict-transport-security"] == "max-age=31536000"
        assert "strict-transport-security" not in forged.headers


# --- CORS ---------------------------------------------------------------------------------


def preflight(method: str = "POST") -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }


async def test_without_configured_origins_there_is_no_cors(api: Api) -> None:
    answer = await api.client.options("/api/orders", headers=preflight())
    assert "access-control-allow-origin" not in answer.headers
    read = await api.client.get("/api/events", headers={"Origin": ORIGIN})
    assert read.status_code == 200
    assert not [name for name in read.headers if name.startswith("access-control-")]


async def test_a_preflight_from_a_configured_origin_is_allowed_without_a_token(
    request: pytest.FixtureRequest,
) -> None:
    async with edge(request, cors_origins=(ORIGIN,), rate_limit_per_ip=2) as api:
        for _ in range(4):  # more than the address may make: preflights are not counted
            answer = await api.client.options("/api/orders", headers=preflight())
            assert answer.status_code in (200, 204), answer.text
            assert answer.headers["access-control-allow-origin"] == ORIGIN
            assert "POST" in answer.headers["access-control-allow-methods"]
            allowed = answer.headers["access-control-allow-headers"].lower()
            assert "authorization" in allowed
            assert "content-type" in allowed
        me = await api.client.options("/api/me", headers=preflight("GET"))
        assert me.headers["access-control-allow-origin"] == ORIGIN
        other = await api.client.options(
            "/api/orders", headers={**preflight(), "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


async def test_pages_of_a_configured_origin_read_the_answer_and_its_limits(
    request: pytest.FixtureRequest,
) -> None:
    async with edge(request, cors_origins=(ORIGIN,)) as api:
        answer = await api.client.get("/api/events", headers={"Origin": ORIGIN})
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        exposed = {
            name.strip().lower()
            for name in answer.headers["access-control-expose-headers"].split(",")
        }
        assert {"ratelimit", "ratelimit-policy", "retry-after", "etag", "x-request-id"} <= exposed
        assert "origin" in answer.headers["vary"].lower()
        stranger = await api.client.get("/api/events", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers


# --- compression --------------------------------------------------------------------------


def seats_path(api: Api) -> str:
    return f"/api/sessions/{api.session_id}/seats"


async def test_big_answers_come_gzip_or_brotli_and_decode_to_the_same_json(api: Api) -> None:
    plain = await api.client.get(seats_path(api), headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    for accepted, used in (("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br")):
        answer = await api.client.get(seats_path(api), headers={"Accept-Encoding": accepted})
        assert answer.headers["content-encoding"] == used
        assert int(answer.headers["content-length"]) < len(plain.content) / 4
        assert answer.json() == plain.json()
        assert answer.headers["etag"] == plain.headers["etag"]
        assert "accept-encoding" in answer.headers["vary"].lower()


async def test_small_answers_are_not_compressed(api: Api) -> None:
    alice = await api.buyer("alice")
    everything = {"Accept-Encoding": "gzip, br"}
    order = await api.client.post(
        "/api/orders",
        json={"session_id": api.session_id, "seat_ids": ["A-1-1"]},
        headers={**alice, **everything},
    )
    assert order.status_code == 201
    payment = await api.client.post(
        f"/api/orders/{order.json()['order_id']}/payments",
        json={"provider": "mock"},
        headers={**alice, **everything},
    )
    assert payment.status_code == 201
    for answer in (order, payment, await api.client.get("/api/me", headers=alice | everything)):
        assert len(answer.content) < 1024
        assert "content-encoding" not in answer.headers


async def test_the_seat_feed_is_not_compressed(api: Api) -> None:
    ws = await api.client.websocket_connect(
        f"/ws/sessions/{api.session_id}/seats", headers={"Accept-Encoding": "gzip, br"}
    )
    with ws:
        snapshot = ws.receive_json()
    assert snapshot["type"] == "snapshot"
    assert len(snapshot["seats"]) == 275


# --- validators and caching ---------------------------------------------------------------


async def test_the_seat_map_answers_304_until_a_seat_changes(api: Api) -> None:
    first = await api.client.get(seats_path(api))
    etag = first.headers["etag"]
    assert re.fullmatch(r'W/"[0-9a-f]+"', etag)
    assert first.headers["cache-control"] == "public, no-cache"

    again = await api.client.get(seats_path(api), headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, no-cache"

    alice = await api.buyer("alice")
    held = await api.client.post(
        "/api/orders", json={"session_id": api.session_id, "seat_ids": ["A-1-1"]}, headers=alice
    )
    assert held.status_code == 201
    changed = await api.client.get(seats_path(api), headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    seat = next(s for s in changed.json()["items"] if s["seat_id"] == "A-1-1")
    assert seat["status"] == "held"


async def test_every_catalog_read_has_a_validator_and_answers_304(api: Api) -> None:
    events = (await api.client.get("/api/events")).json()["items"]
    event = (await api.client.get(f"/api/events/{events[0]['event_id']}")).json()
    paths = {
        "/api/events": "public, no-cache",
        f"/api/events/{event['event_id']}": "public, no-cache",
        f"/api/venues/{event['venue_id']}": "public, max-age=300",
        f"/api/sessions/{api.session_id}": "public, no-cache",
    }
    for path, cache_control in paths.items():
        answer = await api.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == cache_control, path
        etag = answer.headers["etag"]
        for if_none_match in (etag, f'"other", {etag}', etag.removeprefix("W/"), "*"):
            revalidated = await api.client.get(path, headers={"If-None-Match": if_none_match})
            assert revalidated.status_code == 304, (path, if_none_match)
            assert revalidated.headers["etag"] == etag
        for if_none_match in ('W/"other"', "garbage", ","):
            answer = await api.client.get(path, headers={"If-None-Match": if_none_match})
            assert answer.status_code == 200, (path, if_none_match)


async def test_personal_answers_and_tokens_are_never_stored(api: Api) -> None:
    token = await api.client.post(
        "/api/auth/token", json={"email": "admin@openticket.local", "password": PASSWORD}
    )
    assert token.status_code == 200
    assert token.headers["cache-control"] == "no-store"
    assert token.headers["pragma"] == "no-cache"
    refused = await api.client.post(
        "/api/auth/token", json={"email": "admin@openticket.local", "password": "wrong-password"}
    )
    assert refused.status_code == 401
    assert refused.headers["cache-control"] == "no-store"
    alice = await api.buyer("alice")
    order = await api.client.post(
        "/api/orders", json={"session_id": api.session_id, "seat_ids": ["A-1-1"]}, headers=alice
    )
    for answer in (
        order,
        await api.client.get("/api/me", headers=alice),
        await api.client.get("/api/me/orders", headers=alice),
        await api.client.get(f"/api/orders/{order.json()['order_id']}", headers=alice),
        await api.client.get("/api/me/tickets", headers=alice),
    ):
        assert answer.status_code in (200, 201), answer.text
        assert answer.headers["cache-control"] == "no-store", answer.url
        assert "etag" not in answer.headers


# --- security headers ---------------------------------------------------------------------


async def test_every_answer_has_the_security_headers(api: Api) -> None:
    answers = [
        await api.client.get("/api/events"),
        await api.client.get("/api/me"),  # 401
        await api.client.get("/api/no-such-thing"),  # 404
        await api.client.get("/health/live"),
        await api.client.get("/schema/openapi.json"),
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url
        assert answer.headers["referrer-policy"] == "no-referrer", answer.url
        assert answer.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        ), answer.url
        assert "strict-transport-security" not in answer.headers, answer.url


async def test_hsts_only_over_https_and_only_when_configured(
    request: pytest.FixtureRequest, api: Api
) -> None:
    over_tls = await api.client.get("https://testserver.local/api/events")
    assert over_tls.headers["strict-transport-security"] == "max-age=31536000"
    plain = await api.client.get("http://testserver.local/api/events")
    assert "strict-transport-security" not in plain.headers
    async with edge(request, hsts_seconds=0) as quiet:
        answer = await quiet.client.get("https://testserver.local/api/events")
        assert "strict-transport-security" not in answer.headers


async def test_a_dependency_that_is_down_answers_503_with_retry_after(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.container is not None

    async def down(*_: Any) -> Any:
        raise AdapterUnavailable("the seat cache is not answering")

    monkeypatch.setattr(api.container.app(), "seats", down)
    answer = await api.client.get(seats_path(api))
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "service_unavailable"
    assert 1 <= int(answer.headers["retry-after"]) <= 10


async def test_metrics_name_their_format_once(api: Api) -> None:
    answer = await api.client.get("/metrics")
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


# --- the docs page ------------------------------------------------------------------------


class _References(HTMLParser):
    """Every address the page loads, and whether it has inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str]] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self._in_script = True
            if found.get("src"):
                self.loads.append((tag, found["src"] or ""))
        elif tag == "link" and found.get("href"):
            self.loads.append((found.get("rel") or tag, found["href"] or ""))
        elif tag in ("img", "iframe") and found.get("src"):
            self.loads.append((tag, found["src"] or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


async def test_the_docs_page_loads_only_pinned_files_from_this_server(api: Api) -> None:
    page = await api.client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text
    assert "https://" not in page.text
    parser = _References()
    parser.feed(page.text)
    assert parser.inline_scripts == 0
    kinds = {"script": "text/javascript", "stylesheet": "text/css", "icon": "image/png"}
    assert {kind for kind, _ in parser.loads} == set(kinds)
    for kind, address in parser.loads:
        assert address.startswith("/"), address
        assert not address.startswith("//"), address
        loaded = await api.client.get(address)
        assert loaded.status_code == 200, address
        assert loaded.headers["content-type"].startswith(kinds[kind]), address
    assert any("swagger-ui-5.35.0/swagger-ui-bundle.js" in a for _, a in parser.loads)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    schema = await api.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "OpenTicket"
