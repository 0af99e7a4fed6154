"""How the container builds what takes more than a constructor call.

Each function is the factory of a provider of :mod:`openticket.entrypoints.container`
(which reads them as ``build.<name>``): it picks or joins adapters by setting.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from nats.js import JetStreamContext

from openticket.adapters import tracing
from openticket.adapters.challenge.turnstile import TurnstileVerifier
from openticket.adapters.identity import JwtTokenIssuer
from openticket.adapters.identity.admission_tokens import JwtAdmissionTokens, admission_key
from openticket.adapters.memory import MemoryDatabase
from openticket.adapters.nats.connection import NatsConnection
from openticket.adapters.nats.feeds import LiveFeedFollower
from openticket.adapters.nats.lock_store import NatsKvLockStore
from openticket.adapters.nats.publisher import NatsEventPublisher
from openticket.adapters.nats.streams import ensure_streams, stream_name
from openticket.adapters.payments.linepay import LinePayProvider
from openticket.adapters.payments.stripe import StripePaymentProvider
from openticket.adapters.payments.traced import TracedPaymentProvider
from openticket.adapters.postgres import PostgresDatabase
from openticket.application.facade import OpenTicket
from openticket.application.messagebus import MessageBus
from openticket.application.notifications import LiveNotifications
from openticket.application.ports.clock import Clock
from openticket.application.ports.payments import PaymentProvider
from openticket.application.ports.rate_limit import RateLimit, RateLimiter
from openticket.application.ports.unit_of_work import UnitOfWorkFactory
from openticket.domain.shared import DomainEvent
from openticket.entrypoints.http.rate_limit import RateLimits

_T = TypeVar("_T")


def memory_unit_of_work(database: MemoryDatabase) -> UnitOfWorkFactory:
    """The in-memory database's unit-of-work factory."""
    return database.unit_of_work


def postgres_unit_of_work(database: PostgresDatabase) -> UnitOfWorkFactory:
    """The PostgreSQL database's unit-of-work factory."""
    return database.unit_of_work


def postgres_database(url: str, schema: str, pool_size: int) -> PostgresDatabase:
    """The pooled PostgreSQL database (not connected until started)."""
    return PostgresDatabase(url, schema=schema or None, max_connections=pool_size)


def nats_lock_store(
    connection: NatsConnection, clock: Clock, prefix: str, replicas: int
) -> NatsKvLockStore:
    """The NATS KV lock store of the deployment's prefix and replicas."""
    store = NatsKvLockStore(
        connection.js, clock, bucket=stream_name("openticket_seats", prefix), replicas=replicas
    )
    connection.on_connect(lambda _: store.ensure_bucket())
    return store


def nats_events(
    connection: NatsConnection, prefix: str, replicas: int, bus: MessageBus
) -> NatsEventPublisher:
    """The publisher of domain events to the deployment's streams."""

    async def streams(js: JetStreamContext) -> None:
        await ensure_streams(js, prefix=prefix, replicas=replicas)

    connection.on_connect(streams)
    return NatsEventPublisher(
        connection.js, prefix=prefix, client=connection.client, settled=bus.settled_here
    )


def live_feed_follower(
    js: JetStreamContext, notifications: LiveNotifications, prefix: str
) -> LiveFeedFollower:
    """What carries the streams' events to this process's live feeds."""
    return LiveFeedFollower(js, notifications.role().handle, prefix=prefix)


def equals(value: str, wanted: str) -> bool:
    """Whether a setting has the value ``wanted`` (for ``providers.Callable``)."""
    return value == wanted


def both(
    first: Callable[[Sequence[DomainEvent]], Awaitable[None]],
    then: Callable[[Sequence[DomainEvent]], Awaitable[None]],
) -> Callable[[Sequence[DomainEvent]], Awaitable[None]]:
    """Publish to ``first`` (the in-process bus), then to ``then`` (the streams)."""

    async def publish(events: Sequence[DomainEvent]) -> None:
        await first(events)
        await then(events)

    return publish


def joined(*parts: list[Any]) -> list[Any]:
    """The lists, one after the other."""
    return [item for part in parts for item in part]


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    """The dicts, later keys winning."""
    return {name: value for part in parts for name, value in part.items()}


def stripe(
    api_key: str, webhook_secret: str, api_base: str, clock: Clock, timeout: float
) -> StripePaymentProvider | None:
    """The Stripe provider when its key is set."""
    if not api_key:
        return None
    return StripePaymentProvider(
        api_key,
        [s.strip() for s in webhook_secret.split(",")],
        clock=clock,
        api_base=api_base or None,
        timeout=timeout,
    )


def linepay(
    channel_id: str, channel_secret: str, api_base: str, public_url: str, timeout: float
) -> LinePayProvider | None:
    """The LINE Pay provider when its channel is set."""
    if not channel_id:
        return None
    back = f"{public_url.rstrip('/')}/api/payments/linepay"
    return LinePayProvider(
        channel_id,
        channel_secret,
        api_base=api_base,
        confirm_url=f"{back}/confirm",
        cancel_url=f"{back}/cancel",
        timeout=timeout,
    )


def configured(
    enabled: list[str], **candidates: PaymentProvider | None
) -> dict[str, PaymentProvider]:
    """The payment providers the settings name, by name (traced while the process traces)."""
    wrap = tracing.enabled()
    return {
        name: TracedPaymentProvider(provider) if wrap else provider
        for name, provider in candidates.items()
        if provider is not None and name in enabled
    }


def with_lifetime(payment_providers: dict[str, PaymentProvider]) -> list[Any]:
    """The providers that hold connections, to be closed when the application stops."""
    return [p for p in payment_providers.values() if hasattr(p, "stop")]


def rate_limits(limiter: RateLimiter, *, per_user: int, per_ip: int, window: float) -> RateLimits:
    """The API's per-user and per-address limits over one window."""
    span = timedelta(seconds=window)
    return RateLimits(
        limiter,
        per_user=RateLimit(per_user, span) if per_user else None,
        per_ip=RateLimit(per_ip, span) if per_ip else None,
    )


def seconds(value: float) -> timedelta:
    """``value`` seconds as a ``timedelta``."""
    return timedelta(seconds=value)


def token_issuer(
    clock: Clock,
    *,
    secret: str,
    private_key_file: str,
    public_key_file: str,
    issuer: str,
    audience: str,
    ttl: timedelta,
) -> JwtTokenIssuer:
    """RS256 when a private key file is configured, else HS256 (random secret if unset)."""
    if private_key_file:
        return JwtTokenIssuer(
            clock,
            private_key_pem=Path(private_key_file).read_bytes(),
            public_key_pem=Path(public_key_file).read_bytes() if public_key_file else None,
            issuer=issuer,
            audience=audience,
            ttl=ttl,
        )
    return JwtTokenIssuer.from_secret_or_random(
        clock, secret, issuer=issuer, audience=audience, ttl=ttl
    )


def when(on: bool, value: _T) -> _T | None:
    """``value`` when a setting turns it on, else ``None``."""
    return value if on else None


def challenge_verifier(secret: str, url: str) -> TurnstileVerifier | None:
    """Cloudflare Turnstile when its secret is configured, else no verifier."""
    return TurnstileVerifier(secret, url=url) if secret else None


def admission_tokens(clock: Clock, *, secret: str, private_key_file: str) -> JwtAdmissionTokens:
    """Admission tokens keyed by the deployment's signing secret (random when it has none).

    Every API process derives the same key from the same JWT secret or private key, so
    a token from one is good in all; a random key serves one embedded process.
    """
    if secret:
        material: bytes = secret.encode()
    elif private_key_file:
        material = Path(private_key_file).read_bytes()
    else:
        material = secrets.token_bytes(32)
    return JwtAdmissionTokens(clock, admission_key(material))


async def running(app: OpenTicket) -> AsyncIterator[OpenTicket]:
    """The application's lifecycle as a container resource: started, then stopped."""
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
