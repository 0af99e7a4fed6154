"""Settings: every ``OPENTICKET_*`` environment variable, its default and what it does."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs


class SettingsError(ValueError):
    """An ``OPENTICKET_*`` variable with a value that cannot be used."""


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise SettingsError(f"{env_name(attribute.name)} must be positive, not {value}")


def _not_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise SettingsError(f"{env_name(attribute.name)} must not be negative, not {value}")


@attrs.frozen(kw_only=True)
class Settings:
    """How this OpenTicket process is configured; nothing here needs a service by default."""

    partitions: int = attrs.field(
        default=16,
        validator=_positive,
        metadata={"help": "number of seat-hold partitions (identical in every process)"},
    )
    hold_ttl_seconds: float = attrs.field(
        default=120.0,
        validator=_positive,
        metadata={"help": "how long seats stay held for an unpaid order"},
    )
    sweep_interval_seconds: float = attrs.field(
        default=1.0,
        validator=_positive,
        metadata={"help": "how often due holds and orders are expired"},
    )
    lock_store: str = attrs.field(
        default="auto",
        validator=attrs.validators.in_(["auto", "memory", "redis", "nats"]),
        metadata={
            "help": "where seat locks live: memory, redis, nats (JetStream KV), or auto"
            " (redis when a Redis URL is set)"
        },
    )
    persistence: str = attrs.field(
        default="auto",
        validator=attrs.validators.in_(["auto", "memory", "postgres"]),
        metadata={
            "help": "where orders, payments, tickets, users and the catalog live: memory,"
            " postgres, or auto (postgres when a database URL is set)"
        },
    )
    database_url: str = attrs.field(
        default="",
        repr=False,
        metadata={"help": "PostgreSQL URL, e.g. postgresql://user@127.0.0.1:5432/openticket"},
    )
    database_schema: str = attrs.field(
        default="",
        metadata={"help": "PostgreSQL schema of OpenTicket's tables (default: public)"},
    )
    redis_url: str = attrs.field(
        default="",
        repr=False,
        metadata={
            "help": "Redis URL, e.g. redis://127.0.0.1:6379/0: seat locks, rate limits, the"
            " waiting room, the seat-status cache and live feeds across API processes"
        },
    )
    redis_prefix: str = attrs.field(
        default="openticket:",
        metadata={"help": "prefix of every Redis key and channel of this deployment"},
    )
    nats_url: str = attrs.field(
        default="",
        repr=False,
        metadata={"help": "NATS URL with JetStream, e.g. nats://127.0.0.1:4222"},
    )
    nats_prefix: str = attrs.field(
        default="",
        metadata={"help": "prefix of this deployment's NATS streams, subjects and buckets"},
    )
    nats_replicas: int = attrs.field(
        default=1,
        validator=_positive,
        metadata={
            "help": "replicas of the JetStream streams and KV buckets (3 on a three-node cluster)"
        },
    )
    seat_actors: str = attrs.field(
        default="auto",
        validator=attrs.validators.in_(["auto", "local", "workers"]),
        metadata={
            "help": "where the partition actors run: local (in this process), workers"
            " (openticket worker processes, over NATS), or auto (workers when a NATS URL is set)"
        },
    )
    seat_command_timeout_seconds: float = attrs.field(
        default=2.0,
        validator=_positive,
        metadata={"help": "with NATS: how long a seat command waits for its partition's owner"},
    )
    saga_inline: bool = attrs.field(
        default=True,
        metadata={
            "help": "with workers: the API runs the saga step a request set off (tickets"
            " after a payment, seats back after a cancel) before it answers; the workers'"
            " durable consumers make sure of every step either way"
        },
    )
    worker_consumers: int = attrs.field(
        default=4,
        validator=_positive,
        metadata={"help": "with NATS: durable consumers per role in each worker (they share it)"},
    )
    consumer_max_deliver: int = attrs.field(
        default=10,
        validator=_positive,
        metadata={"help": "with NATS: deliveries of an event before a consumer parks it"},
    )
    consumer_ack_wait_seconds: float = attrs.field(
        default=30.0,
        validator=_positive,
        metadata={
            "help": "with NATS: how long an event taken by a worker that died waits before"
            " another worker gets it"
        },
    )
    worker_lease_seconds: float = attrs.field(
        default=3.0,
        validator=_positive,
        metadata={"help": "with NATS: how long a dead worker keeps its partitions"},
    )
    rate_limit_per_user: int = attrs.field(
        default=300,
        validator=_not_negative,
        metadata={"help": "API requests one signed-in user may make per window (0: no limit)"},
    )
    rate_limit_per_ip: int = attrs.field(
        default=1200,
        validator=_not_negative,
        metadata={"help": "API requests one client address may make per window (0: no limit)"},
    )
    rate_limit_window_seconds: float = attrs.field(
        default=60.0,
        validator=_positive,
        metadata={"help": "the sliding window of the rate limits"},
    )
    admission_ttl_seconds: float = attrs.field(
        default=600.0,
        validator=_positive,
        metadata={"help": "how long a buyer let in from the waiting room may buy"},
    )
    database_pool_size: int = attrs.field(
        default=20,
        validator=_positive,
        metadata={"help": "most PostgreSQL connections this process opens"},
    )
    public_url: str = attrs.field(
        default="http://127.0.0.1:8000",
        metadata={
            "help": "where buyers reach this API: LINE Pay sends them back to"
            " <public_url>/api/payments/linepay/confirm"
        },
    )
    stripe_api_key: str = attrs.field(
        default="",
        repr=False,
        metadata={"help": "Stripe secret key (sk_...): enables the stripe payment provider"},
    )
    stripe_webhook_secret: str = attrs.field(
        default="",
        repr=False,
        metadata={
            "help": "Stripe webhook signing secret (whsec_...); several, comma-separated,"
            " while one is rolled"
        },
    )
    stripe_api_base: str = attrs.field(
        default="",
        metadata={"help": "Stripe API address (default: Stripe's own)"},
    )
    linepay_channel_id: str = attrs.field(
        default="",
        metadata={"help": "LINE Pay channel id: enables the linepay payment provider"},
    )
    linepay_channel_secret: str = attrs.field(
        default="", repr=False, metadata={"help": "LINE Pay channel secret key"}
    )
    linepay_api_base: str = attrs.field(
        default="https://api-pay.line.me",
        metadata={
            "help": "LINE Pay API address (https://sandbox-api-pay.line.me for the sandbox)"
        },
    )
    payment_timeout_seconds: float = attrs.field(
        default=20.0,
        validator=_positive,
        metadata={"help": "how long one call to a payment provider may take"},
    )
    jwt_secret: str = attrs.field(
        default="",
        repr=False,
        metadata={"help": "HS256 signing secret (32+ bytes); random at start when unset"},
    )
    jwt_private_key_file: str = attrs.field(
        default="",
        metadata={"help": "RS256 instead of HS256: PEM file of the signing key"},
    )
    jwt_public_key_file: str = attrs.field(
        default="",
        metadata={"help": "RS256: PEM file of the verifying key (derived from the private one)"},
    )
    jwt_issuer: str = attrs.field(default="openticket", metadata={"help": "the tokens' iss"})
    jwt_audience: str = attrs.field(default="openticket", metadata={"help": "the tokens' aud"})
    token_ttl_seconds: float = attrs.field(
        default=900.0, validator=_positive, metadata={"help": "how long an access token lives"}
    )
    cors_origins: tuple[str, ...] = attrs.field(
        default=(),
        metadata={
            "help": "origins whose browser pages may call the API, comma-separated"
            " (e.g. https://tickets.example.com); none by default"
        },
    )
    trusted_proxies: tuple[str, ...] = attrs.field(
        default=(),
        metadata={
            "help": "addresses or networks (CIDR) of the load balancers in front of the API,"
            " comma-separated: only through them is X-Forwarded-For believed"
        },
    )
    hsts_seconds: int = attrs.field(
        default=31_536_000,
        validator=_not_negative,
        metadata={"help": "Strict-Transport-Security max-age on HTTPS answers (0: none)"},
    )
    ws_max_message_bytes: int = attrs.field(
        default=4096,
        validator=_positive,
        metadata={"help": "largest WebSocket message a client may send"},
    )
    ws_max_messages_per_minute: int = attrs.field(
        default=120,
        validator=_positive,
        metadata={"help": "WebSocket messages a client may send per minute on one feed"},
    )
    ws_max_connections_per_user: int = attrs.field(
        default=10,
        validator=_positive,
        metadata={"help": "live feeds one signed-in user may hold open in one API process"},
    )
    ws_max_connections_per_address: int = attrs.field(
        default=100,
        validator=_positive,
        metadata={"help": "live feeds one client address may hold open in one API process"},
    )
    demo_password: str = attrs.field(
        default="openticket",
        repr=False,
        metadata={"help": "password of the demo admin, organizer and staff accounts"},
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``OPENTICKET_*`` variables; unknown ones are ignored."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in attrs.fields(cls):
            raw = env.get(env_name(field.name))
            if raw is None or raw == "":
                continue
            kind = type(field.default)
            if kind is tuple:
                values[field.name] = tuple(part.strip() for part in raw.split(",") if part.strip())
                continue
            try:
                values[field.name] = _parse_bool(raw) if kind is bool else kind(raw)
            except ValueError as e:
                raise SettingsError(
                    f"{env_name(field.name)}={raw!r} is not a {kind.__name__}"
                ) from e
        return cls(**values)

    def __attrs_post_init__(self) -> None:
        if self.persistence == "postgres" and not self.database_url:
            raise SettingsError("OPENTICKET_PERSISTENCE=postgres needs OPENTICKET_DATABASE_URL")
        if self.stripe_api_key and not self.stripe_webhook_secret:
            raise SettingsError(
                "OPENTICKET_STRIPE_API_KEY needs OPENTICKET_STRIPE_WEBHOOK_SECRET: payments"
                " settle by signed webhooks"
            )
        if bool(self.linepay_channel_id) != bool(self.linepay_channel_secret):
            raise SettingsError(
                "LINE Pay needs both OPENTICKET_LINEPAY_CHANNEL_ID and"
                " OPENTICKET_LINEPAY_CHANNEL_SECRET"
            )

    @property
    def payment_providers(self) -> tuple[str, ...]:
        """The payment providers this configuration enables (``mock`` always)."""
        return (
            "mock",
            *(["stripe"] if self.stripe_api_key else []),
            *(["linepay"] if self.linepay_channel_id else []),
        )

    @property
    def storage(self) -> str:
        """The persistence in use: ``auto`` resolved by whether a database URL is set."""
        if self.persistence != "auto":
            return self.persistence
        return "postgres" if self.database_url else "memory"

    @property
    def locks(self) -> str:
        """The lock store in use: ``auto`` resolved by whether a Redis URL is set."""
        if self.lock_store != "auto":
            return self.lock_store
        return "redis" if self.redis_url else "memory"

    @property
    def hot_state(self) -> str:
        """Where rate limits, the waiting room, seat statuses and live feeds are shared."""
        return "redis" if self.redis_url else "memory"

    @property
    def actors(self) -> str:
        """``workers`` when seat commands go over NATS to worker processes, else ``local``."""
        if self.seat_actors != "auto":
            return self.seat_actors
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

    def as_config(self, process: str = "api") -> dict[str, Any]:
        """The settings as the dependency container's configuration.

        ``process`` is what the process is: ``api`` (``openticket serve``, an embedding
        application) or ``worker`` (``openticket worker``).
        """
        if process not in ("api", "worker"):
            raise ValueError(f"a process is an api or a worker, not {process!r}")
        return {
            **attrs.asdict(self),
            "persistence": self.storage,
            "lock_store": self.locks,
            "hot_state": self.hot_state,
            "messaging": self.messaging,
            "seat_actors": self.actors,
            "saga": self.saga(process),
            "live_feeds": self.live_feeds(process),
            "profile": "embedded" if self.embedded else "production",
        }


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def env_name(field: str) -> str:
    """The variable of a setting: ``hold_ttl_seconds`` → ``OPENTICKET_HOLD_TTL_SECONDS``."""
    return f"OPENTICKET_{field.upper()}"


def describe() -> list[tuple[str, str, str]]:
    """``(variable, default, help)`` for every setting, for ``--help``."""
    return [
        (env_name(f.name), "" if not f.repr else str(f.default), str(f.metadata.get("help", "")))
        for f in attrs.fields(Settings)
    ]
