"""Settings: every ``OPENTICKET_*`` environment variable, its group, default and meaning.

``Settings.from_env()`` reads them in one pass and checks them in one pass: whatever is
wrong comes out together as ``SettingsError.problems``, one line per problem, each naming
the variable, the value given (never a secret's) and what is allowed. Constructing
``Settings(...)`` directly runs the same checks.

One module, over 500 lines: every variable with its help and check in one table, the
one place ``--help``, the docs and the checks are read from.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import attrs

from openticket.domain.identity import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

PREFIX = "OPENTICKET_"
TEST_PREFIXES = ("OPENTICKET_TEST_", "OPENTICKET_E2E_")
"""Variables of the test suite, not of a deployment: never reported as unknown."""
MIN_JWT_SECRET_BYTES = 32


class SettingsError(ValueError):
    """``OPENTICKET_*`` variables with values that cannot be used: one line per problem."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems


class Group(StrEnum):
    """The headings settings are listed under, in ``--help``'s order."""

    SALES = "seats and sales"
    STORAGE = "where things live"
    DATABASE = "database (PostgreSQL)"
    REDIS = "Redis"
    NATS = "NATS"
    WORKERS = "workers (with NATS)"
    HTTP = "HTTP"
    SECURITY = "security (access tokens)"
    RATE_LIMITS = "rate limits"
    WEBSOCKET = "WebSocket feeds"
    PAYMENTS = "payments"
    TRACING = "tracing (OpenTelemetry)"
    DEMO = "demo data"


class LockStoreMode(StrEnum):
    """Where seat locks live."""

    AUTO = "auto"
    MEMORY = "memory"
    REDIS = "redis"
    NATS = "nats"


class MockPaymentsMode(StrEnum):
    """Whether buyers may pay with the mock provider (which takes no money)."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


class PersistenceMode(StrEnum):
    """Where orders, payments, tickets, users and the catalog live."""

    AUTO = "auto"
    MEMORY = "memory"
    POSTGRES = "postgres"


class SeatActorsMode(StrEnum):
    """Where the partition actors run."""

    AUTO = "auto"
    LOCAL = "local"
    WORKERS = "workers"


Check = Callable[[Any], str | None]
"""What is wrong with a value, as the advice of what to use instead; None when it is fine."""

_Mode = TypeVar("_Mode", bound=StrEnum)


def _either(names: list[str]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


def _choices(kind: type[StrEnum]) -> str:
    return f"use {_either([str(member) for member in kind])}"


def _mode(kind: type[_Mode], field: str, value: str) -> _Mode:
    """``value`` as a ``kind``, for ``Settings(...)`` in code.

    ``from_env`` parses the environment's modes itself, reporting them with every other
    problem; here a wrong mode raises at once.
    """
    try:
        return kind(value)
    except ValueError:
        raise SettingsError(f"{env_name(field)}={value}: {_choices(kind)}") from None


def _lock_store(value: str) -> LockStoreMode:
    return _mode(LockStoreMode, "lock_store", value)


def _mock_payments(value: str) -> MockPaymentsMode:
    return _mode(MockPaymentsMode, "mock_payments", value)


def _persistence(value: str) -> PersistenceMode:
    return _mode(PersistenceMode, "persistence", value)


def _seat_actors(value: str) -> SeatActorsMode:
    return _mode(SeatActorsMode, "seat_actors", value)


def _about(
    group: Group, text: str, *, check: Check | None = None, secret: bool = False
) -> dict[str, Any]:
    """A field's metadata: its heading, its help, its check, whether it is a secret."""
    return {"group": group, "help": text, "check": check, "secret": secret}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _above_zero(value: object) -> str | None:
    number = _number(value)
    return None if number is not None and number > 0 else "use a number above 0"


def _at_least_one(value: object) -> str | None:
    number = _number(value)
    return None if number is not None and number >= 1 else "use a number of 1 or more"


def _not_negative(value: object) -> str | None:
    number = _number(value)
    return None if number is not None and number >= 0 else "use 0 or a number above"


def _port_or_zero(value: object) -> str | None:
    number = _number(value)
    ok = number is not None and number == int(number) and 0 <= number <= 65_535
    return None if ok else "use a port from 1 to 65535, or 0 for none"


def _at_least_one_second(value: object) -> str | None:
    number = _number(value)
    return None if number is not None and number >= 1 else "use 1 second or more"


def _replicas(value: object) -> str | None:
    # JetStream keeps at most five replicas of a stream or bucket
    return None if isinstance(value, int) and 1 <= value <= 5 else "use 1 to 5"


def _not_empty(value: object) -> str | None:
    return None if value else "use a name (it must not be empty)"


def _scheme(value: str, schemes: Iterable[str], example: str) -> str | None:
    """Advice when ``value`` is set but not a URL of one of ``schemes``."""
    if not value:
        return None
    allowed = tuple(schemes)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises on a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in allowed or "://" not in value:
        listed = _either([f"{s}://" for s in allowed])
        return f"use a URL starting with {listed}, e.g. {example}"
    return None


def _database_url(value: str) -> str | None:
    return _scheme(value, ("postgresql", "postgres"), "postgresql://user@127.0.0.1:5432/openticket")


def _redis_url(value: str) -> str | None:
    return _scheme(value, ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0")


def _cluster_url(value: str) -> bool:
    """Whether a Redis URL can name a cluster node: TCP (not a socket), database 0."""
    parts = urlsplit(value)
    return parts.scheme.lower() in ("redis", "rediss") and parts.path.strip("/") in ("", "0")


def _nats_url(value: str) -> str | None:
    if "," in value:
        # one server: the client learns the rest of a cluster from it once connected
        return "use one server's URL, e.g. nats://127.0.0.1:4222 (the client finds the cluster)"
    return _scheme(value, ("nats", "tls", "ws", "wss"), "nats://127.0.0.1:4222")


def _url_or_empty(value: str) -> str | None:
    return _web_url(value) if value else None


def _web_url(value: str) -> str | None:
    advice = _scheme(value, ("https", "http"), "https://tickets.example.com")
    if advice is None and value and not urlsplit(value).hostname:
        return "use a URL with a host, e.g. https://tickets.example.com"
    return advice


def _schema(value: str) -> str | None:
    from openticket.adapters.postgres.errors import check_schema  # noqa: PLC0415  # driver

    try:
        check_schema(value or None)
    except ValueError:
        return "use lower-case letters, digits and '_' (a letter or '_' first, 63 at most)"
    return None


def _nats_prefix(value: str) -> str | None:
    from openticket.adapters.nats.streams import stream_name  # noqa: PLC0415  # driver

    try:
        stream_name("SEATS", value)
    except ValueError:
        return "use letters, digits, '_' and '-' only"
    return None


def _jwt_secret(value: str) -> str | None:
    if value and len(value.encode()) < MIN_JWT_SECRET_BYTES:
        return (
            f"use {MIN_JWT_SECRET_BYTES} bytes or more, e.g. the output of"
            " python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return None


def _key_file(value: str) -> str | None:
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        return "no such file: use the path of a PEM file"
    if not os.access(path, os.R_OK):
        return "this process may not read it"
    return None


def _those(items: list[str], one: str, many: str) -> str:
    return f"{', '.join(map(repr, items))} {one if len(items) == 1 else many}"


def _origins(value: tuple[str, ...]) -> str | None:
    bad = [item for item in value if not _is_origin(item)]
    if bad:
        return (
            f"{_those(bad, 'is not an origin', 'are not origins')}: use scheme://host[:port]"
            " (e.g. https://tickets.example.com, no path), comma-separated"
        )
    return None


def _is_origin(item: str) -> bool:
    try:
        parts = urlsplit(item)
        parts.port  # noqa: B018  # raises on a port that is not a number in range
    except ValueError:
        return False
    return bool(
        parts.scheme
        and parts.hostname
        and "://" in item
        and not (parts.path or parts.query or parts.fragment or parts.username)
        and not item.endswith(("?", "#"))
    )


def _networks(value: tuple[str, ...]) -> str | None:
    bad = []
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            bad.append(item)
    if bad:
        return (
            f"{_those(bad, 'is not an IP address or network', 'are not')}:"
            " use e.g. 10.0.0.5 or 10.0.0.0/8, comma-separated"
        )
    return None


def _demo_password(value: str) -> str | None:
    if MIN_PASSWORD_LENGTH <= len(value) <= MAX_PASSWORD_LENGTH:
        return None
    return f"use {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters"


@attrs.frozen(kw_only=True)
class Settings:
    """How this OpenTicket process is configured; nothing here needs a service by default."""

    # --- seats and sales -----------------------------------------------------------------
    partitions: int = attrs.field(
        default=16,
        metadata=_about(
            Group.SALES,
            "number of seat-hold partitions (identical in every process)",
            check=_above_zero,
        ),
    )
    hold_ttl_seconds: float = attrs.field(
        default=120.0,
        metadata=_about(
            Group.SALES, "how long seats stay held for an unpaid order", check=_above_zero
        ),
    )
    sweep_interval_seconds: float = attrs.field(
        default=1.0,
        metadata=_about(
            Group.SALES, "how often due holds and orders are expired", check=_above_zero
        ),
    )
    admission_ttl_seconds: float = attrs.field(
        default=600.0,
        metadata=_about(
            Group.SALES,
            "how long a buyer let in from the waiting room may buy",
            check=_above_zero,
        ),
    )
    queue_overbook: float = attrs.field(
        default=1.5,
        metadata=_about(
            Group.SALES,
            "a waiting room admits while buyers let in and still shopping stay below the "
            "seats for sale times this (at least 1)",
            check=_at_least_one,
        ),
    )
    queue_admit_per_second: float = attrs.field(
        default=50.0,
        metadata=_about(
            Group.SALES,
            "at most this many buyers a second are let in from a session's waiting room",
            check=_above_zero,
        ),
    )
    bot_defence: bool = attrs.field(
        default=True,
        metadata=_about(
            Group.SALES,
            "judge queue joins and orders by behaviour (pace per account, address and device,"
            " accounts per address, refusals, join-to-order time): a scripted join goes to"
            " the back of the queue, a scripted order is refused (403 bot_suspected)",
        ),
    )
    turnstile_secret: str = attrs.field(
        default="",
        metadata=_about(
            Group.SALES,
            "Cloudflare Turnstile secret key: sessions with challenge_required need a"
            " solved challenge (X-Challenge-Token) to join their waiting room",
            secret=True,
        ),
    )
    turnstile_site_key: str = attrs.field(
        default="",
        metadata=_about(
            Group.SALES,
            "Cloudflare Turnstile site key: the waiting room page shows the challenge of"
            " sessions with challenge_required (with the secret key above)",
        ),
    )
    turnstile_verify_url: str = attrs.field(
        default="https://challenges.cloudflare.com/turnstile/v0/siteverify",
        metadata=_about(Group.SALES, "where Turnstile tokens are verified", check=_web_url),
    )
    # --- where things live ---------------------------------------------------------------
    lock_store: LockStoreMode = attrs.field(
        default=LockStoreMode.AUTO,
        converter=_lock_store,
        metadata=_about(
            Group.STORAGE,
            "where seat locks live: memory, redis, nats (JetStream KV), or auto"
            " (redis when a Redis URL is set)",
        ),
    )
    persistence: PersistenceMode = attrs.field(
        default=PersistenceMode.AUTO,
        converter=_persistence,
        metadata=_about(
            Group.STORAGE,
            "where orders, payments, tickets, users and the catalog live: memory,"
            " postgres, or auto (postgres when a database URL is set)",
        ),
    )
    # --- database ------------------------------------------------------------------------
    database_url: str = attrs.field(
        default="",
        repr=False,
        metadata=_about(
            Group.DATABASE,
            "PostgreSQL URL, e.g. postgresql://user@127.0.0.1:5432/openticket",
            check=_database_url,
        ),
    )
    database_schema: str = attrs.field(
        default="",
        metadata=_about(
            Group.DATABASE,
            "PostgreSQL schema of OpenTicket's tables (default: public)",
            check=_schema,
        ),
    )
    database_pool_size: int = attrs.field(
        default=20,
        metadata=_about(
            Group.DATABASE, "most PostgreSQL connections this process opens", check=_above_zero
        ),
    )
    # --- Redis ---------------------------------------------------------------------------
    redis_url: str = attrs.field(
        default="",
        repr=False,
        metadata=_about(
            Group.REDIS,
            "Redis URL, e.g. redis://127.0.0.1:6379/0: seat locks, rate limits, the"
            " waiting room, the seat-status cache and live feeds across API processes",
            check=_redis_url,
        ),
    )
    redis_prefix: str = attrs.field(
        default="openticket:",
        metadata=_about(Group.REDIS, "prefix of every Redis key and channel of this deployment"),
    )
    redis_cluster: bool = attrs.field(
        default=False,
        metadata=_about(
            Group.REDIS,
            "the Redis URL names a node of a Redis Cluster (any one: the client finds the"
            " others and follows failovers)",
        ),
    )
    # --- NATS ----------------------------------------------------------------------------
    nats_url: str = attrs.field(
        default="",
        repr=False,
        metadata=_about(
            Group.NATS,
            "NATS URL with JetStream, e.g. nats://127.0.0.1:4222 (one server; the client"
            " finds the rest of a cluster)",
            check=_nats_url,
        ),
    )
    nats_prefix: str = attrs.field(
        default="",
        metadata=_about(
            Group.NATS,
            "prefix of this deployment's NATS streams, subjects and buckets",
            check=_nats_prefix,
        ),
    )
    nats_replicas: int = attrs.field(
        default=1,
        metadata=_about(
            Group.NATS,
            "replicas of the JetStream streams and KV buckets (3 on a three-node cluster)",
            check=_replicas,
        ),
    )
    seat_command_timeout_seconds: float = attrs.field(
        default=2.0,
        metadata=_about(
            Group.NATS,
            "how long a seat command waits for its partition's owner",
            check=_above_zero,
        ),
    )
    # --- workers -------------------------------------------------------------------------
    seat_actors: SeatActorsMode = attrs.field(
        default=SeatActorsMode.AUTO,
        converter=_seat_actors,
        metadata=_about(
            Group.WORKERS,
            "where the partition actors run: local (in this process), workers"
            " (openticket worker processes, over NATS), or auto (workers when a NATS URL is set)",
        ),
    )
    saga_inline: bool = attrs.field(
        default=True,
        metadata=_about(
            Group.WORKERS,
            "the API runs the saga step a request set off (tickets after a payment, seats"
            " back after a cancel) before it answers; the workers' durable consumers make"
            " sure of every step either way",
        ),
    )
    worker_consumers: int = attrs.field(
        default=4,
        metadata=_about(
            Group.WORKERS,
            "durable consumers per role in each worker (they share it)",
            check=_above_zero,
        ),
    )
    consumer_max_deliver: int = attrs.field(
        default=10,
        metadata=_about(
            Group.WORKERS, "deliveries of an event before a consumer parks it", check=_above_zero
        ),
    )
    consumer_ack_wait_seconds: float = attrs.field(
        default=30.0,
        metadata=_about(
            Group.WORKERS,
            "how long an event taken by a worker that died waits before another worker gets it",
            check=_above_zero,
        ),
    )
    worker_lease_seconds: float = attrs.field(
        default=3.0,
        metadata=_about(
            Group.WORKERS, "how long a dead worker keeps its partitions", check=_above_zero
        ),
    )
    worker_metrics_port: int = attrs.field(
        default=0,
        metadata=_about(
            Group.WORKERS,
            "port a worker serves Prometheus /metrics on (0: none); each worker on one"
            " machine needs its own",
            check=_port_or_zero,
        ),
    )
    worker_metrics_host: str = attrs.field(
        default="127.0.0.1",
        metadata=_about(
            Group.WORKERS,
            "address a worker's /metrics listens on (0.0.0.0 for a scraper on another host)",
        ),
    )
    # --- tracing -------------------------------------------------------------------------
    otlp_endpoint: str = attrs.field(
        default="",
        metadata=_about(
            Group.TRACING,
            "OpenTelemetry collector to send traces to over OTLP/HTTP, e.g."
            " http://127.0.0.1:4318 (empty: no tracing); OTEL_* variables tune the SDK",
            check=_url_or_empty,
        ),
    )
    # --- HTTP ----------------------------------------------------------------------------
    public_url: str = attrs.field(
        default="http://127.0.0.1:8000",
        metadata=_about(
            Group.HTTP,
            "where buyers reach this API: LINE Pay sends them back to"
            " <public_url>/api/payments/linepay/confirm",
            check=_web_url,
        ),
    )
    cors_origins: tuple[str, ...] = attrs.field(
        default=(),
        metadata=_about(
            Group.HTTP,
            "origins whose browser pages may call the API, comma-separated"
            " (e.g. https://tickets.example.com); none by default",
            check=_origins,
        ),
    )
    trusted_proxies: tuple[str, ...] = attrs.field(
        default=(),
        metadata=_about(
            Group.HTTP,
            "addresses or networks (CIDR) of the load balancers in front of the API,"
            " comma-separated: only through them is X-Forwarded-For believed",
            check=_networks,
        ),
    )
    hsts_seconds: int = attrs.field(
        default=31_536_000,
        metadata=_about(
            Group.HTTP,
            "Strict-Transport-Security max-age on HTTPS answers (0: none)",
            check=_not_negative,
        ),
    )
    # --- security ------------------------------------------------------------------------
    jwt_secret: str = attrs.field(
        default="",
        repr=False,
        metadata=_about(
            Group.SECURITY,
            "HS256 signing secret (32+ bytes, the same in every API process); random at"
            " start when unset, which serve allows only without Redis and NATS",
            check=_jwt_secret,
            secret=True,
        ),
    )
    jwt_private_key_file: str = attrs.field(
        default="",
        metadata=_about(
            Group.SECURITY,
            "RS256 instead of HS256: PEM file of the signing key",
            check=_key_file,
        ),
    )
    jwt_public_key_file: str = attrs.field(
        default="",
        metadata=_about(
            Group.SECURITY,
            "RS256: PEM file of the verifying key (derived from the private one)",
            check=_key_file,
        ),
    )
    jwt_issuer: str = attrs.field(
        default="openticket",
        metadata=_about(Group.SECURITY, "the tokens' iss", check=_not_empty),
    )
    jwt_audience: str = attrs.field(
        default="openticket",
        metadata=_about(Group.SECURITY, "the tokens' aud", check=_not_empty),
    )
    token_ttl_seconds: float = attrs.field(
        default=900.0,
        metadata=_about(
            Group.SECURITY, "how long an access token lives", check=_at_least_one_second
        ),
    )
    # --- rate limits ---------------------------------------------------------------------
    rate_limit_per_user: int = attrs.field(
        default=300,
        metadata=_about(
            Group.RATE_LIMITS,
            "API requests one signed-in user may make per window (0: no limit)",
            check=_not_negative,
        ),
    )
    rate_limit_per_ip: int = attrs.field(
        default=1200,
        metadata=_about(
            Group.RATE_LIMITS,
            "API requests one client address may make per window (0: no limit)",
            check=_not_negative,
        ),
    )
    rate_limit_window_seconds: float = attrs.field(
        default=60.0,
        metadata=_about(
            Group.RATE_LIMITS, "the sliding window of the rate limits", check=_above_zero
        ),
    )
    # --- WebSocket feeds -----------------------------------------------------------------
    ws_max_message_bytes: int = attrs.field(
        default=4096,
        metadata=_about(
            Group.WEBSOCKET, "largest WebSocket message a client may send", check=_above_zero
        ),
    )
    ws_max_messages_per_minute: int = attrs.field(
        default=120,
        metadata=_about(
            Group.WEBSOCKET,
            "WebSocket messages a client may send per minute on one feed",
            check=_above_zero,
        ),
    )
    ws_max_connections_per_user: int = attrs.field(
        default=10,
        metadata=_about(
            Group.WEBSOCKET,
            "live feeds one signed-in user may hold open in one API process",
            check=_above_zero,
        ),
    )
    ws_max_connections_per_address: int = attrs.field(
        default=100,
        metadata=_about(
            Group.WEBSOCKET,
            "live feeds one client address may hold open in one API process",
            check=_above_zero,
        ),
    )
    # --- payments ------------------------------------------------------------------------
    mock_payments: MockPaymentsMode = attrs.field(
        default=MockPaymentsMode.AUTO,
        converter=_mock_payments,
        metadata=_about(
            Group.PAYMENTS,
            "whether the mock provider takes payments (it takes no money: tickets for"
            " free): on, off, or auto (on until Stripe or LINE Pay is configured)",
        ),
    )
    payment_timeout_seconds: float = attrs.field(
        default=20.0,
        metadata=_about(
            Group.PAYMENTS, "how long one call to a payment provider may take", check=_above_zero
        ),
    )
    stripe_api_key: str = attrs.field(
        default="",
        repr=False,
        metadata=_about(
            Group.PAYMENTS,
            "Stripe secret key (sk_...): enables the stripe payment provider",
            secret=True,
        ),
    )
    stripe_publishable_key: str = attrs.field(
        default="",
        metadata=_about(
            Group.PAYMENTS,
            "Stripe publishable key (pk_...): the checkout page's card form (Stripe.js);"
            " without it the web pages do not offer Stripe",
        ),
    )
    stripe_webhook_secret: str = attrs.field(
        default="",
        repr=False,
        metadata=_about(
            Group.PAYMENTS,
            "Stripe webhook signing secret (whsec_...); several, comma-separated, while one"
            " is rolled",
            secret=True,
        ),
    )
    stripe_api_base: str = attrs.field(
        default="",
        metadata=_about(
            Group.PAYMENTS, "Stripe API address (default: Stripe's own)", check=_web_url
        ),
    )
    linepay_channel_id: str = attrs.field(
        default="",
        metadata=_about(
            Group.PAYMENTS, "LINE Pay channel id: enables the linepay payment provider"
        ),
    )
    linepay_channel_secret: str = attrs.field(
        default="",
        repr=False,
        metadata=_about(Group.PAYMENTS, "LINE Pay channel secret key", secret=True),
    )
    linepay_api_base: str = attrs.field(
        default="https://api-pay.line.me",
        metadata=_about(
            Group.PAYMENTS,
            "LINE Pay API address (https://sandbox-api-pay.line.me for the sandbox)",
            check=_web_url,
        ),
    )
    # --- demo data -----------------------------------------------------------------------
    demo_password: str = attrs.field(
        default="openticket",
        repr=False,
        metadata=_about(
            Group.DEMO,
            "password of the demo admin, organizer and staff accounts (embedded profile,"
            " or serve --demo); unset, it is the published 'openticket'",
            check=_demo_password,
            secret=True,
        ),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``OPENTICKET_*`` variables (unset or empty: the default).

        Raises ``SettingsError`` with every problem found, one line each. Unknown
        ``OPENTICKET_*`` names are not an error: ``unknown_variables`` reports them.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in attrs.fields(cls):
            raw = env.get(env_name(field.name))
            if raw is None or not raw.strip():
                continue
            try:
                values[field.name] = _parse(type(field.default), raw)
            except ValueError as e:
                problems.append(f"{_shown(field, raw)}: {e}")
        try:
            settings = cls(**values)
        except SettingsError as e:
            problems.extend(e.problems)
        if problems:
            raise SettingsError(*problems)
        return settings

    def __attrs_post_init__(self) -> None:
        problems = [
            f"{_shown(field, value)}: {advice}"
            for field in attrs.fields(type(self))
            if (check := field.metadata.get("check")) is not None
            and (advice := check(value := getattr(self, field.name))) is not None
        ]
        problems += self._needs()
        if problems:
            raise SettingsError(*problems)

    def _needs(self) -> list[str]:
        """Settings that need others: one line for each that lacks its partner."""
        needs: list[tuple[bool, str]] = [
            (
                self.persistence is PersistenceMode.POSTGRES and not self.database_url,
                "OPENTICKET_PERSISTENCE=postgres: needs OPENTICKET_DATABASE_URL",
            ),
            (
                self.lock_store is LockStoreMode.REDIS and not self.redis_url,
                "OPENTICKET_LOCK_STORE=redis: needs OPENTICKET_REDIS_URL (the Redis server"
                " of the seat locks), or use memory",
            ),
            (
                self.redis_cluster and not self.redis_url,
                "OPENTICKET_REDIS_CLUSTER=true: needs OPENTICKET_REDIS_URL (any node of the"
                " cluster)",
            ),
            (
                self.redis_cluster and bool(self.redis_url) and not _cluster_url(self.redis_url),
                f"OPENTICKET_REDIS_URL={_without_password(self.redis_url)}: a Redis Cluster"
                " is reached over TCP and has only database 0: use e.g."
                " redis://10.0.0.5:6379/0 with OPENTICKET_REDIS_CLUSTER=true",
            ),
            (
                self.lock_store is LockStoreMode.NATS and not self.nats_url,
                "OPENTICKET_LOCK_STORE=nats: needs OPENTICKET_NATS_URL (a NATS server with"
                " JetStream), or use memory",
            ),
            (
                self.seat_actors is SeatActorsMode.WORKERS and not self.nats_url,
                "OPENTICKET_SEAT_ACTORS=workers: needs OPENTICKET_NATS_URL (the workers are"
                " reached over NATS), or use local",
            ),
            (
                bool(self.stripe_api_key) and not self.stripe_webhook_secret,
                "OPENTICKET_STRIPE_API_KEY: needs OPENTICKET_STRIPE_WEBHOOK_SECRET (payments"
                " settle by signed webhooks)",
            ),
            (
                bool(self.linepay_channel_id) != bool(self.linepay_channel_secret),
                "LINE Pay needs both OPENTICKET_LINEPAY_CHANNEL_ID and"
                " OPENTICKET_LINEPAY_CHANNEL_SECRET",
            ),
            (
                bool(self.jwt_public_key_file) and not self.jwt_private_key_file,
                f"OPENTICKET_JWT_PUBLIC_KEY_FILE={self.jwt_public_key_file}: goes with"
                " OPENTICKET_JWT_PRIVATE_KEY_FILE (RS256); set that too, or neither",
            ),
        ]
        return [line for missing, line in needs if missing]

    @property
    def payment_providers(self) -> tuple[str, ...]:
        """The payment providers this configuration enables.

        The mock settles without taking money, so it is there only until a real
        provider is configured, unless ``OPENTICKET_MOCK_PAYMENTS=on`` says otherwise.
        """
        real = (
            *(["stripe"] if self.stripe_api_key else []),
            *(["linepay"] if self.linepay_channel_id else []),
        )
        mock = self.mock_payments is MockPaymentsMode.ON or (
            self.mock_payments is MockPaymentsMode.AUTO and not real
        )
        return (*(["mock"] if mock else []), *real)

    @property
    def storage(self) -> str:
        """The persistence in use: ``auto`` resolved by whether a database URL is set."""
        if self.persistence is not PersistenceMode.AUTO:
            return str(self.persistence)
        return "postgres" if self.database_url else "memory"

    @property
    def locks(self) -> str:
        """The lock store in use: ``auto`` resolved by whether a Redis URL is set."""
        if self.lock_store is not LockStoreMode.AUTO:
            return str(self.lock_store)
        return "redis" if self.redis_url else "memory"

    @property
    def hot_state(self) -> str:
        """Where rate limits, the waiting room, seat statuses and live feeds are shared."""
        return "redis" if self.redis_url else "memory"

    @property
    def actors(self) -> str:
        """``workers`` when seat commands go over NATS to worker processes, else ``local``."""
        if self.seat_actors is not SeatActorsMode.AUTO:
            return str(self.seat_actors)
        return "workers" if self.nats_url else "local"

    def saga(self, process: str = "api") -> str:
        """Where the saga's roles run in a ``process`` (``api`` or ``worker``).

        ``local`` on the in-process bus (actors in this process); with workers, ``inline``
        in an API process (the step a request set off, tried once) unless
        ``saga_inline`` is off, and ``elsewhere`` otherwise: a worker runs them as durable
        consumers, not on its bus.
        """
        if self.actors == "local":
            return "local"
        return "inline" if process == "api" and self.saga_inline else "elsewhere"

    def live_feeds(self, process: str = "api") -> str:
        """``follow`` when this process learns seat and order changes from the streams.

        That is an API process whose actors run in workers, with no Redis to carry the
        live feeds between processes; else ``local`` (the in-process bus feeds them).
        """
        if process == "api" and self.actors == "workers" and self.hot_state == "memory":
            return "follow"
        return "local"

    @property
    def embedded(self) -> bool:
        """The embedded profile: one process, nothing kept, no service (the default)."""
        return (self.storage, self.hot_state, self.messaging) == ("memory", "memory", "memory")

    @property
    def messaging(self) -> str:
        """``nats`` when a NATS URL is set, else ``memory`` (the in-process bus)."""
        return "nats" if self.nats_url else "memory"

    @property
    def shared_signing_key(self) -> bool:
        """Whether tokens are signed with a configured key (every process can verify them)."""
        return bool(self.jwt_secret or self.jwt_private_key_file)

    def as_config(self, process: str = "api") -> dict[str, Any]:
        """The settings as the dependency container's configuration (plain strings for modes).

        ``process`` is what the process is: ``api`` (``openticket serve``, an embedding
        application) or ``worker`` (``openticket worker``).
        """
        if process not in ("api", "worker"):
            raise ValueError(f"a process is an api or a worker, not {process!r}")
        return {
            **attrs.asdict(self, value_serializer=_plain),
            "persistence": self.storage,
            "payment_providers": list(self.payment_providers),
            "lock_store": self.locks,
            "hot_state": self.hot_state,
            "messaging": self.messaging,
            "seat_actors": self.actors,
            "saga": self.saga(process),
            "live_feeds": self.live_feeds(process),
            "profile": "embedded" if self.embedded else "production",
        }


def _plain(instance: object, field: attrs.Attribute[Any] | None, value: Any) -> Any:
    return str(value) if isinstance(value, StrEnum) else value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse(kind: type, raw: str) -> Any:
    """A variable's text as the setting's type; ``ValueError`` saying what to use instead."""
    text = raw.strip()
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError("use true or false (or 1/0, yes/no, on/off)")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("use a whole number") from None
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("use a number") from None
        if not math.isfinite(number):
            raise ValueError("use a finite number")
        return number
    if kind is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if issubclass(kind, StrEnum):
        try:
            return kind(text.lower())
        except ValueError:
            raise ValueError(_choices(kind)) from None
    return raw


def _without_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
        netloc = f"{parts.username or ''}:***@{host}{port}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "(a value that is not a URL)"


def _shown(field: attrs.Attribute[Any], value: object) -> str:
    """``OPENTICKET_X=value`` for a message; never a secret's value, nor a URL's password."""
    name = env_name(field.name)
    if field.metadata.get("secret"):
        return f"{name} (set; the value is not shown)"
    if field.name.endswith("_url") and isinstance(value, str):
        return f"{name}={_without_password(value)}"
    return f"{name}={_text(value)}"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # as it was most likely written: 120, not 120.0
    return str(value)


def env_name(field: str) -> str:
    """The variable of a setting: ``hold_ttl_seconds`` → ``OPENTICKET_HOLD_TTL_SECONDS``."""
    return f"{PREFIX}{field.upper()}"


def known_variables() -> list[str]:
    """Every ``OPENTICKET_*`` variable a setting is read from."""
    return [env_name(f.name) for f in attrs.fields(Settings)]


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning line per ``OPENTICKET_*`` variable that is no setting.

    Each names the closest known variable. The test suite's own variables
    (``OPENTICKET_TEST_*``, ``OPENTICKET_E2E_*``) are left alone.
    """
    env = os.environ if environ is None else environ
    known = known_variables()
    # compared without the prefix every name shares, which would make all of them look close
    suffixes = [name.removeprefix(PREFIX) for name in known]
    lines = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in known or name.startswith(TEST_PREFIXES):
            continue
        close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.6)
        hint = (
            f"did you mean {PREFIX}{close[0]}?" if close else "openticket --help lists the settings"
        )
        lines.append(f"{name} is not a setting and is ignored: {hint}")
    return lines


def default_text(field: attrs.Attribute[Any]) -> str:
    """A field's default as it would be written in the environment ('' when none or secret)."""
    if field.metadata.get("secret"):
        return ""
    return _text(field.default)


def describe() -> list[tuple[str, str, str]]:
    """``(variable, default, help)`` for every setting; secrets' defaults are not shown."""
    return [
        (env_name(f.name), default_text(f), str(f.metadata.get("help", "")))
        for f in attrs.fields(Settings)
    ]


def grouped(
    only: Iterable[Group] | None = None,
) -> list[tuple[Group, list[tuple[str, str, str]]]]:
    """The settings under their headings, in ``Group`` order: ``(group, describe() rows)``."""
    wanted = list(Group) if only is None else [g for g in Group if g in set(only)]
    rows: dict[Group, list[tuple[str, str, str]]] = {group: [] for group in wanted}
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(Settings)
    for field, row in zip(fields, describe(), strict=True):
        group = field.metadata.get("group")
        if group in rows:
            rows[group].append(row)
    return [(group, found) for group, found in rows.items() if found]
