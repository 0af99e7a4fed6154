"""``openticket serve``: the API on uvicorn, with demo data on an empty catalog."""

from __future__ import annotations

import sys

import uvicorn

from openticket.adapters.nats.connection import NatsUnreachable
from openticket.adapters.nats.connection import where as nats_where
from openticket.adapters.postgres import DatabaseUnreachable, MigrationError
from openticket.adapters.postgres.errors import redacted
from openticket.adapters.redis.connection import RedisUnreachable, where
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.demo import DEMO_ACCOUNTS, seed_demo
from openticket.entrypoints.logging import configure_logging
from openticket.entrypoints.migrate import apply_migrations
from openticket.entrypoints.settings import Settings


async def serve(settings: Settings, *, host: str, port: int) -> int:
    """Start the platform, seed the demo, print where to go, serve until stopped."""
    configure_logging()
    container = build_container(settings)
    tickets, identity, clock = container.app(), container.identity(), container.clock()
    if settings.storage == "postgres":
        print(f"openticket: starting ({_profile(settings)})...", flush=True)
        try:
            await apply_migrations(settings.database_url, settings.database_schema or None)
            await container.postgres_database().start()
        except (DatabaseUnreachable, MigrationError) as e:
            print(f"openticket: {e}", file=sys.stderr)
            return 1
    else:
        print(f"openticket: starting ({_profile(settings)})...", flush=True)
    try:
        if settings.hot_state == "redis":
            await container.redis().start()
        if settings.messaging == "nats":
            await container.nats().start()
    except (RedisUnreachable, NatsUnreachable) as e:
        print(f"openticket: {e}", file=sys.stderr)
        return 1
    demo = await seed_demo(tickets, identity, clock, settings.demo_password)
    # the app's lifespan starts the partition actors and the sweeper, and stops them
    server = uvicorn.Server(
        uvicorn.Config(
            container.http_app(), host=host, port=port, log_level="warning", lifespan="on"
        )
    )
    _announce(f"http://{host}:{port}", settings, demo.session_id if demo else None)
    await server.serve()
    return 0


def _profile(settings: Settings) -> str:
    if (settings.storage, settings.hot_state, settings.payment_providers) == (
        "memory",
        "memory",
        ("mock",),
    ):
        return "embedded profile: in-memory, mock payments"
    parts = ["PostgreSQL storage" if settings.storage == "postgres" else "in-memory storage"]
    if settings.hot_state == "redis":
        parts.append("Redis for locks, limits and live feeds")
    return ", ".join([*parts, f"payments: {', '.join(settings.payment_providers)}"])


def _storage(settings: Settings) -> str:
    if settings.storage == "postgres":
        where = redacted(settings.database_url)
        schema = f", schema {settings.database_schema}" if settings.database_schema else ""
        return f"PostgreSQL at {where}{schema}"
    return "in memory (gone at exit; set OPENTICKET_DATABASE_URL to keep it in PostgreSQL)"


def _locks(settings: Settings) -> str:
    if settings.actors == "workers":
        return (
            f"decided by openticket worker processes over NATS at {nats_where(settings.nats_url)}"
            " (start them: openticket worker --partitions 0-7)"
        )
    if settings.locks == "nats":
        return f"NATS JetStream KV at {nats_where(settings.nats_url)}"
    if settings.hot_state == "redis":
        shared = f"Redis at {where(settings.redis_url)} (rate limits, live feeds shared too)"
        return shared if settings.locks == "redis" else f"in memory; {shared}"
    return "in memory (one process; set OPENTICKET_REDIS_URL to share them)"


def _payments(base: str, settings: Settings) -> str:
    named = {
        "mock": "mock (settles at once)",
        "stripe": f"stripe (point its webhooks at {base}/api/webhooks/stripe)",
        "linepay": (
            f"linepay (buyers come back to {settings.public_url.rstrip('/')}"
            "/api/payments/linepay/confirm)"
        ),
    }
    return "; ".join(named[name] for name in settings.payment_providers)


def _saga(settings: Settings) -> str:
    durable = "durable consumers of the openticket worker processes"
    if settings.saga_inline:
        return f"each request's next step runs here at once; {durable} make sure of every step"
    return f"run by the {durable} (OPENTICKET_SAGA_INLINE=false)"


def _announce(base: str, settings: Settings, session_id: object) -> None:
    lines = [
        f"OpenTicket is serving on {base}",
        f"  API docs:     {base}/schema",
        f"  OpenAPI:      {base}/schema/openapi.json",
        f"  health:       {base}/health/ready",
        f"  storage:      {_storage(settings)}",
        f"  seat locks:   {_locks(settings)}",
        *([f"  saga:         {_saga(settings)}"] if settings.actors == "workers" else []),
        f"  payments:     {_payments(base, settings)}",
        f"demo accounts, password {settings.demo_password!r} (set OPENTICKET_DEMO_PASSWORD):",
    ]
    lines += [f"  {email:<28} {role.value}" for email, _, role in DEMO_ACCOUNTS]
    if session_id is not None:
        lines += [f"demo session on sale now: {session_id}"]
    else:
        lines += [f"the catalog was kept from an earlier run: curl -s {base}/api/events"]
    lines += [
        "next:",
        f"  curl -s {base}/api/sessions/{session_id or '<session_id>'}/seats",
        f"  curl -s -X POST {base}/api/auth/register -H 'content-type: application/json' "
        '-d \'{"email": "me@example.com", "password": "a-long-password", '
        '"display_name": "Me"}\'',
        "press Ctrl+C to stop",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)
