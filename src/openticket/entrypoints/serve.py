"""``openticket serve``: the API on uvicorn.

The order of start-up is what a person watching it needs: refuse settings that cannot
work (exit 2), take the port (exit 1 when it is in use), reach the services, then seed
or retire demo data, start the app, and only once it serves print where it is.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys

import uvicorn

from openticket.adapters.nats.connection import NatsUnreachable
from openticket.adapters.nats.connection import where as nats_where
from openticket.adapters.postgres import DatabaseUnreachable, MigrationError
from openticket.adapters.postgres.errors import redacted
from openticket.adapters.redis.connection import RedisUnreachable, where
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.container import Container
from openticket.entrypoints.demo import (
    DEMO_ACCOUNTS,
    disabled,
    ensure_demo_accounts,
    retire_demo_accounts,
    seed_demo,
)
from openticket.entrypoints.heap import settle_heap
from openticket.entrypoints.logging import configure_logging
from openticket.entrypoints.migrate import apply_migrations
from openticket.entrypoints.settings import Settings
from openticket.entrypoints.task_dump import dump_tasks_on_sigusr1
from openticket.entrypoints.tracing import start_tracing, stop_tracing

BACKLOG = 2048
FIRST_ADMIN = "openticket users create --email you@example.com --role admin"


class CannotListen(OSError):
    """The address cannot be listened on: in use, not this machine's, or not resolvable."""


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` and listening (port 0: any free port).

    Raises ``CannotListen`` with one line saying why not. Listening at once keeps the
    port ours while the services are reached; connections wait until the app serves.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise CannotListen(f"cannot listen on {host}: no such address ({e.strerror})") from e
    sock = socket.socket(family, kind, proto)
    try:
        # a restart may take the port over from connections still in TIME_WAIT, never
        # from a process that listens on it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as e:
        sock.close()
        raise CannotListen(_why_not(host, port, e)) from e
    return sock


def _why_not(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is in use (another openticket serve?):"
            " stop that process or choose another --port"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: use one of its own, or 0.0.0.0 for all"
    if error.errno == errno.EACCES:
        return f"may not listen on port {port}: ports below 1024 need privileges; use another"
    return f"cannot listen on {host}:{port}: {error.strerror or error}"


def refusal(settings: Settings) -> str | None:
    """Why ``serve`` must not start with these settings, in one line; None when it may."""
    if (settings.hot_state == "redis" or settings.messaging == "nats") and (
        not settings.shared_signing_key
    ):
        shared = "OPENTICKET_REDIS_URL" if settings.hot_state == "redis" else "OPENTICKET_NATS_URL"
        return (
            f"{shared} is set, so several API processes may serve this deployment, and each"
            " would sign tokens with a random secret of its own that the others refuse: set"
            " OPENTICKET_JWT_SECRET (32+ bytes, the same everywhere) or"
            " OPENTICKET_JWT_PRIVATE_KEY_FILE"
        )
    return None


async def serve(settings: Settings, *, host: str, port: int, demo: bool = False) -> int:
    """Start the platform, print where to go once it serves, serve until stopped.

    Demo data is seeded in the embedded profile (nothing is kept) and with ``demo``;
    otherwise demo accounts left with a published password are disabled.
    """
    configure_logging()
    refused = refusal(settings)
    if refused:
        print(f"openticket serve: {refused}", file=sys.stderr)
        return 2
    traced = (
        start_tracing(
            settings.otlp_endpoint,
            service="openticket-api",
            instance=f"{socket.gethostname()}-{os.getpid()}",
        )
        if settings.otlp_endpoint
        else None
    )
    try:
        return await _build_and_serve(settings, host=host, port=port, demo=demo)
    finally:
        stop_tracing(traced)


async def _build_and_serve(settings: Settings, *, host: str, port: int, demo: bool) -> int:
    container = build_container(settings)
    try:
        container.token_issuer()  # reads and checks the RS256 key files
    except (ValueError, OSError) as e:
        print(f"openticket serve: the token signing key cannot be used: {e}", file=sys.stderr)
        return 2
    try:
        sock = listen(host, port)
    except CannotListen as e:
        print(f"openticket serve: {e}", file=sys.stderr)
        return 1
    with sock:
        return await _serve(container, settings, sock, host, demo=demo)


async def _serve(
    container: Container, settings: Settings, sock: socket.socket, host: str, *, demo: bool
) -> int:
    print(f"openticket: starting ({_profile(settings)})...", flush=True)
    try:
        if settings.storage == "postgres":
            await apply_migrations(settings.database_url, settings.database_schema or None)
            await container.postgres_database().start()
        if settings.hot_state == "redis":
            await container.redis().start()
        if settings.messaging == "nats":
            await container.nats().start()
    except (DatabaseUnreachable, MigrationError, RedisUnreachable, NatsUnreachable) as e:
        print(f"openticket: {e}", file=sys.stderr)
        return 1
    tickets, identity = container.app(), container.identity()
    seeded = demo or settings.storage == "memory"
    session_id = queued_id = None
    if seeded:
        off = disabled(await ensure_demo_accounts(identity, settings.demo_password))
        made = await seed_demo(tickets, identity, container.clock(), settings.demo_password)
        session_id = made.session_id if made else None
        queued_id = made.queued_session_id if made else None
        if off:
            print(f"openticket: demo accounts disabled earlier stay so: {', '.join(off)}")
    else:
        retired = await retire_demo_accounts(identity, settings.demo_password)
        if retired:
            print(
                f"openticket: disabled {', '.join(retired)}: their demo password is published;"
                " serve --demo keeps demo accounts, users create makes real ones",
                flush=True,
            )
    catalog = bool((await tickets.list_events(limit=1)).items)
    # the app's lifespan starts the partition actors and the sweeper, and stops them
    server = uvicorn.Server(
        uvicorn.Config(
            container.http_app(),
            log_level="warning",
            lifespan="on",
            # the app finds a client's address itself, believing X-Forwarded-For only
            # from OPENTICKET_TRUSTED_PROXIES; uvicorn's default believes loopback
            proxy_headers=False,
            server_header=False,
            ws_max_size=settings.ws_max_message_bytes,
        )
    )
    dump_tasks_on_sigusr1()
    running = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        done, _ = await asyncio.wait({running}, timeout=0.02)
        if done:
            await running
            return 1  # the app did not start; uvicorn said why
    settle_heap()
    _announce(
        _base(host, sock),
        settings,
        seeded=seeded,
        session_id=session_id,
        queued_id=queued_id,
        catalog=catalog,
    )
    await running
    return 0


def _base(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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


def _announce(
    base: str,
    settings: Settings,
    *,
    seeded: bool,
    session_id: object,
    catalog: bool,
    queued_id: object = None,
) -> None:
    lines = [
        f"OpenTicket is serving on {base}",
        f"  web pages:    {base}/  (buy seats, my tickets, /organizer, /staff/check-in)",
        f"  API docs:     {base}/schema",
        f"  OpenAPI:      {base}/schema/openapi.json",
        f"  health:       {base}/health/ready",
        f"  metrics:      {base}/metrics"
        + (f"; traces to {settings.otlp_endpoint}" if settings.otlp_endpoint else ""),
        f"  storage:      {_storage(settings)}",
        f"  seat locks:   {_locks(settings)}",
        *([f"  saga:         {_saga(settings)}"] if settings.actors == "workers" else []),
        f"  payments:     {_payments(base, settings)}",
    ]
    if seeded:
        lines += [
            f"demo accounts, password {settings.demo_password!r} (set OPENTICKET_DEMO_PASSWORD):",
            *(f"  {email:<28} {role.value}" for email, _, role in DEMO_ACCOUNTS),
        ]
    else:
        lines += [
            "accounts: no demo accounts here (serve --demo seeds them);"
            f" make the first admin with: {FIRST_ADMIN}"
        ]
    if session_id is not None:
        lines += [f"demo session on sale now: {session_id}"]
        if queued_id is not None:
            lines += [f"demo session on sale through a waiting room: {queued_id}"]
    elif catalog:
        lines += [f"the catalog was kept from an earlier run: curl -s {base}/api/events"]
    else:
        lines += ["the catalog is empty: an organizer creates venues, events and sessions"]
    lines += [
        "next:",
        f"  open {base}/ in a browser"
        + (f" (the demo session: {base}/sessions/{session_id})" if session_id else ""),
        f"  curl -s {base}/api/sessions/{session_id or '<session_id>'}/seats",
        f"  curl -s -X POST {base}/api/auth/register -H 'content-type: application/json' "
        '-d \'{"email": "me@example.com", "password": "a-long-password", '
        '"display_name": "Me"}\'',
        "press Ctrl+C to stop",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)
