"""The composition root: the one place where adapters are chosen and wired to ports.

Nothing is built at import time. ``Selector`` providers pick each adapter by setting
(``lock_store``, ``persistence``); later adapters join the selectors. Tests replace
any provider with ``container.<name>.override(...)``. What a provider builds in more
than a constructor call is a function of :mod:`openticket.entrypoints.builders`.
"""

from __future__ import annotations

import structlog
from dependency_injector import containers, providers

from openticket.adapters.bot_defence import HeuristicBotDefence
from openticket.adapters.identity import Argon2PasswordHasher
from openticket.adapters.memory import MemoryDatabase, MemoryLockStore, MemoryNotifier
from openticket.adapters.memory.ledger import MemorySaleLedger
from openticket.adapters.memory.rate_limit import MemoryRateLimiter
from openticket.adapters.memory.signal_counter import MemorySignalCounter
from openticket.adapters.memory.waiting_room import MemoryWaitingRoomStore
from openticket.adapters.nats.command_path import PartitionHost, RemoteSeating
from openticket.adapters.nats.connection import NatsConnection
from openticket.adapters.nats.feeds import SeatEventForwarder
from openticket.adapters.nats.parked import NatsParkedMessages
from openticket.adapters.nats.roles import RoleConsumers
from openticket.adapters.nats.streams import stream_name
from openticket.adapters.nats.worker_node import WorkerNode
from openticket.adapters.payments.mock import MockPaymentProvider
from openticket.adapters.payments.mock.shared import SharedMockPaymentProvider
from openticket.adapters.postgres import OutboxRelay
from openticket.adapters.postgres.ledger import PostgresSaleLedger
from openticket.adapters.redis.connection import RedisConnection
from openticket.adapters.redis.lock_store import RedisLockStore
from openticket.adapters.redis.notifier import RedisNotifier
from openticket.adapters.redis.rate_limit import RedisRateLimiter
from openticket.adapters.redis.seat_cache import RedisSeatStatusCache
from openticket.adapters.redis.signal_counter import RedisSignalCounter
from openticket.adapters.redis.waiting_room import RedisWaitingRoomStore
from openticket.adapters.system import RandomIdGenerator, SecretTicketCodeGenerator, SystemClock
from openticket.application.audit import SaleAuditor
from openticket.application.catalog.service import CatalogService
from openticket.application.facade import OpenTicket
from openticket.application.gate.waiting_room import GatePolicy, WaitingRoom
from openticket.application.handlers import register_handlers
from openticket.application.identity.service import IdentityService
from openticket.application.messagebus import MessageBus
from openticket.application.notifications import LiveNotifications
from openticket.application.ordering.service import OrderingService
from openticket.application.payments.service import PaymentService
from openticket.application.roles import SagaPlacement
from openticket.application.saga import PurchaseSaga
from openticket.application.sales import SalesReader
from openticket.application.seating.board import SeatBoard
from openticket.application.seating.router import PartitionRouter
from openticket.application.seating.service import SeatingService, TicketedSeats
from openticket.application.ticketing.service import TicketingService
from openticket.application.transactions import Transactions
from openticket.entrypoints import builders as build
from openticket.entrypoints.http.app import create_app
from openticket.entrypoints.http.policy import HttpPolicy


class Container(containers.DeclarativeContainer):
    """Every adapter and service of one OpenTicket process."""

    config = providers.Configuration(strict=True)

    # --- time, ids, logs ----------------------------------------------------------------
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(RandomIdGenerator)
    ticket_codes = providers.Singleton(SecretTicketCodeGenerator)
    logger = providers.Singleton(structlog.get_logger, "openticket")

    # --- adapters, chosen by settings -----------------------------------------------------
    memory_database = providers.Singleton(MemoryDatabase)
    postgres_database = providers.Singleton(
        build.postgres_database,
        config.database_url,
        config.database_schema,
        config.database_pool_size,
    )
    uow_factory = providers.Selector(
        config.persistence,
        memory=providers.Singleton(build.memory_unit_of_work, memory_database),
        postgres=providers.Singleton(build.postgres_unit_of_work, postgres_database),
    )
    redis = providers.Singleton(RedisConnection, config.redis_url, cluster=config.redis_cluster)
    nats = providers.Singleton(NatsConnection, config.nats_url)
    redis_client = redis.provided.client
    lock_store = providers.Selector(
        config.lock_store,
        memory=providers.Singleton(MemoryLockStore, clock=clock),
        redis=providers.Singleton(RedisLockStore, redis_client, clock, prefix=config.redis_prefix),
        nats=providers.Singleton(
            build.nats_lock_store, nats, clock, config.nats_prefix, config.nats_replicas
        ),
    )
    redis_seat_cache = providers.Singleton(
        RedisSeatStatusCache, redis_client, prefix=config.redis_prefix
    )
    notifier = providers.Selector(
        config.hot_state,
        memory=providers.Singleton(MemoryNotifier),
        redis=providers.Singleton(
            RedisNotifier, redis_client, prefix=config.redis_prefix, seat_cache=redis_seat_cache
        ),
    )
    rate_limiter = providers.Selector(
        config.hot_state,
        memory=providers.Singleton(MemoryRateLimiter, clock),
        redis=providers.Singleton(
            RedisRateLimiter, redis_client, clock, prefix=config.redis_prefix
        ),
    )
    seat_cache = providers.Selector(
        config.hot_state,
        memory=providers.Object(None),
        redis=redis_seat_cache,
    )
    """Seat statuses shared by API processes; in one process the actors answer directly."""
    cache_with_news = providers.Selector(
        config.hot_state, memory=providers.Object(False), redis=providers.Object(True)
    )
    """The Redis notifier writes the seat cache with the news of a change (one round trip)."""
    waiting_room = providers.Selector(
        config.hot_state,
        memory=providers.Singleton(
            MemoryWaitingRoomStore,
            clock,
            admission_ttl=providers.Singleton(build.seconds, config.admission_ttl_seconds),
        ),
        redis=providers.Singleton(
            RedisWaitingRoomStore,
            redis_client,
            clock,
            prefix=config.redis_prefix,
            admission_ttl=providers.Singleton(build.seconds, config.admission_ttl_seconds),
        ),
    )
    mock_payments = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MockPaymentProvider, clock=clock),
        postgres=providers.Singleton(SharedMockPaymentProvider, postgres_database, clock),
    )
    """The mock provider: in this process's memory, or (several processes) in PostgreSQL."""
    stripe_payments = providers.Singleton(
        build.stripe,
        config.stripe_api_key,
        config.stripe_webhook_secret,
        config.stripe_api_base,
        clock,
        config.payment_timeout_seconds,
    )
    linepay_payments = providers.Singleton(
        build.linepay,
        config.linepay_channel_id,
        config.linepay_channel_secret,
        config.linepay_api_base,
        config.public_url,
        config.payment_timeout_seconds,
    )
    payment_providers = providers.Singleton(
        build.configured,
        config.payment_providers,
        mock=mock_payments,
        stripe=stripe_payments,
        linepay=linepay_payments,
    )
    """The configured providers by name: Stripe and LINE Pay when set, the mock until
    one of them is (``OPENTICKET_MOCK_PAYMENTS``)."""

    # --- application --------------------------------------------------------------------------
    bus = providers.Singleton(MessageBus, clock=clock, logger=logger)
    notifications = providers.Singleton(
        LiveNotifications, notifier, seat_cache, cache_with_news=cache_with_news
    )
    """Live feeds from events: on the bus, or (API processes with workers and no Redis)
    fed by the stream followers."""
    nats_events = providers.Singleton(
        build.nats_events, nats, config.nats_prefix, config.nats_replicas, bus
    )
    """The JetStream streams, where every committed event also goes when NATS is set."""
    outbox_relay = providers.Singleton(
        OutboxRelay,
        postgres_database,
        providers.Selector(
            config.messaging,
            memory=bus.provided.publish,
            nats=providers.Callable(build.both, bus.provided.publish, nats_events.provided.publish),
        ),
    )
    publish = providers.Selector(
        config.persistence,
        memory=bus.provided.publish,
        postgres=outbox_relay.provided.publish,
    )
    """Where services send the events they committed: through the outbox relay if any."""
    components = providers.Callable(
        build.joined,
        providers.Callable(build.with_lifetime, payment_providers),
        providers.Selector(
            config.persistence,
            memory=providers.List(),
            postgres=providers.List(postgres_database, outbox_relay),
        ),
        providers.Selector(
            config.hot_state,
            memory=providers.List(),
            redis=providers.List(redis, notifier),
        ),
        providers.Selector(
            config.messaging,
            memory=providers.List(),
            nats=providers.List(nats),
        ),
        providers.Selector(
            config.live_feeds,
            local=providers.List(),
            follow=providers.List(
                providers.Singleton(
                    build.live_feed_follower,
                    nats.provided.js,
                    notifications,
                    config.nats_prefix,
                )
            ),
        ),
    )
    """What starts before the application and stops after it, in this order."""
    health_checks = providers.Callable(
        build.merged,
        providers.Selector(
            config.persistence,
            memory=providers.Dict(),
            postgres=providers.Dict(database=postgres_database.provided.ping),
        ),
        providers.Selector(
            config.hot_state,
            memory=providers.Dict(),
            redis=providers.Dict(redis=redis.provided.ping),
        ),
        providers.Selector(
            config.messaging,
            memory=providers.Dict(),
            nats=providers.Dict(nats=nats.provided.ping),
        ),
    )
    router = providers.Singleton(PartitionRouter, partitions=config.partitions)
    hold_ttl = providers.Singleton(build.seconds, config.hold_ttl_seconds)
    catalog = providers.Singleton(CatalogService, uow=uow_factory, clock=clock, ids=ids)
    local_seating = providers.Singleton(
        SeatingService,
        router=router,
        lock_store=lock_store,
        layout=catalog.provided.seat_layout,
        sold_seats=providers.Singleton(TicketedSeats, uow_factory),
        clock=clock,
        ids=ids,
        hold_ttl=hold_ttl,
        publish=bus.provided.publish,
    )
    """The partition actors of this process (all partitions; a worker serves its own)."""
    remote_seating = providers.Singleton(
        RemoteSeating,
        nats.provided.client,
        router,
        prefix=config.nats_prefix,
        timeout=config.seat_command_timeout_seconds,
    )
    seating = providers.Selector(config.seat_actors, local=local_seating, workers=remote_seating)
    """What the use cases call: the local actors, or the owners' over NATS."""
    seat_board = providers.Singleton(
        SeatBoard, catalog=catalog, seating=seating, seat_cache=seat_cache
    )
    """A session's seats with their statuses, and its stock."""
    admission_tokens = providers.Singleton(
        build.admission_tokens,
        clock,
        secret=config.jwt_secret,
        private_key_file=config.jwt_private_key_file,
    )
    signal_counter = providers.Selector(
        config.hot_state,
        memory=providers.Singleton(MemorySignalCounter),
        redis=providers.Singleton(RedisSignalCounter, redis_client, prefix=config.redis_prefix),
    )
    """The bot defence's counts: in process, or in Redis shared by every API process."""
    bot_defence = providers.Callable(
        build.when, config.bot_defence, providers.Singleton(HeuristicBotDefence, signal_counter)
    )
    gate = providers.Singleton(
        WaitingRoom,
        store=waiting_room,
        catalog=catalog,
        stock=seat_board.provided.stock,
        tokens=admission_tokens,
        clock=clock,
        policy=providers.Singleton(
            GatePolicy,
            overbook=config.queue_overbook,
            admit_per_second=config.queue_admit_per_second,
            admission_ttl=providers.Singleton(build.seconds, config.admission_ttl_seconds),
        ),
        bot_defence=bot_defence,
        challenge=providers.Singleton(
            build.challenge_verifier, config.turnstile_secret, config.turnstile_verify_url
        ),
    )
    """The waiting rooms of sessions sold through a queue, and their admitter."""
    transactions = providers.Singleton(Transactions, uow_factory, publish)
    """Units of work that publish what they commit (to the bus, or the outbox relay)."""
    ordering = providers.Singleton(
        OrderingService,
        transactions=transactions,
        catalog=catalog,
        seating=seating,
        clock=clock,
        ids=ids,
        gate=gate,
    )
    payments = providers.Singleton(
        PaymentService,
        transactions=transactions,
        providers=payment_providers,
        clock=clock,
        ids=ids,
    )
    ticketing = providers.Singleton(
        TicketingService, transactions=transactions, clock=clock, ids=ids
    )
    saga = providers.Singleton(
        PurchaseSaga,
        transactions=transactions,
        catalog=catalog,
        seating=seating,
        payments=payments,
        clock=clock,
        ids=ids,
        ticket_codes=ticket_codes,
    )
    roles = providers.Singleton(
        register_handlers,
        bus,
        catalog,
        ordering,
        payments,
        saga,
        ticketing,
        notifications,
        placement=providers.Callable(SagaPlacement, config.saga),
        live_feeds_on_bus=providers.Callable(build.equals, config.live_feeds, "local"),
    )
    """The bus wired (commands, the saga's roles, the live feeds); the saga's roles."""
    sales = providers.Singleton(
        SalesReader, catalog=catalog, board=seat_board, transactions=transactions, queue=gate
    )
    """A session's sale as its organizer watches it (the sales dashboard)."""
    app = providers.Singleton(
        OpenTicket,
        catalog=catalog,
        seating=seating,
        ordering=ordering,
        payments=payments,
        ticketing=ticketing,
        saga=saga,
        notifications=notifications,
        notifier=notifier,
        bus=bus,
        roles=roles,
        board=seat_board,
        sales=sales,
        gate=gate,
        sweep_interval=providers.Singleton(build.seconds, config.sweep_interval_seconds),
        components=components,
        health_checks=health_checks,
    )
    running_app = providers.Resource(build.running, app)

    # --- a worker process (``openticket worker``; built after the app has started) -------
    seat_event_forwarder = providers.Singleton(SeatEventForwarder, nats_events)
    partition_host = providers.Singleton(
        PartitionHost, nats.provided.client, local_seating, prefix=config.nats_prefix
    )
    role_consumers = providers.Singleton(
        RoleConsumers,
        nats.provided.client,
        nats.provided.js,
        app.provided.roles,
        prefix=config.nats_prefix,
        instances=config.worker_consumers,
        max_deliver=config.consumer_max_deliver,
        ack_wait=providers.Singleton(build.seconds, config.consumer_ack_wait_seconds),
        replicas=config.nats_replicas,
    )
    worker_node = providers.Factory(
        WorkerNode,
        seating=local_seating,
        bus=bus,
        host=partition_host,
        forward=seat_event_forwarder,
        consumers=role_consumers,
        js=nats.provided.js,
        clock=clock,
        partitions=config.partitions,
        leases_bucket=providers.Callable(stream_name, "openticket_leases", config.nats_prefix),
        lease=providers.Singleton(build.seconds, config.worker_lease_seconds),
        replicas=config.nats_replicas,
        sweep_interval=providers.Singleton(build.seconds, config.sweep_interval_seconds),
    )
    """``worker_node(worker_id=..., preferred=[...])``: the worker's partitions and consumers."""

    # --- the audit of a sale --------------------------------------------------------------
    sale_ledger = providers.Selector(
        config.persistence,
        memory=providers.Singleton(MemorySaleLedger, memory_database),
        postgres=providers.Singleton(PostgresSaleLedger, postgres_database),
    )
    parked_messages = providers.Selector(
        config.messaging,
        memory=providers.Object(None),
        nats=providers.Singleton(NatsParkedMessages, nats.provided.js, prefix=config.nats_prefix),
    )
    auditor = providers.Singleton(
        SaleAuditor, ledger=sale_ledger, clock=clock, parked=parked_messages
    )
    """``openticket audit``: the stored books of a sale held against its promises."""

    # --- identity and the HTTP API --------------------------------------------------------------
    password_hasher = providers.Singleton(Argon2PasswordHasher)
    token_issuer = providers.Singleton(
        build.token_issuer,
        clock,
        secret=config.jwt_secret,
        private_key_file=config.jwt_private_key_file,
        public_key_file=config.jwt_public_key_file,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        ttl=providers.Singleton(build.seconds, config.token_ttl_seconds),
    )
    identity = providers.Singleton(
        IdentityService,
        uow=uow_factory,
        hasher=password_hasher,
        tokens=token_issuer,
        clock=clock,
        ids=ids,
    )
    rate_limits = providers.Singleton(
        build.rate_limits,
        rate_limiter,
        per_user=config.rate_limit_per_user,
        per_ip=config.rate_limit_per_ip,
        window=config.rate_limit_window_seconds,
    )
    http_policy = providers.Singleton(
        HttpPolicy,
        cors_origins=config.cors_origins,
        trusted_proxies=config.trusted_proxies,
        limit_loopback=providers.Callable(build.equals, config.profile, "production"),
        hsts_seconds=config.hsts_seconds,
        ws_max_message_bytes=config.ws_max_message_bytes,
        ws_max_messages_per_minute=config.ws_max_messages_per_minute,
        ws_max_connections_per_user=config.ws_max_connections_per_user,
        ws_max_connections_per_address=config.ws_max_connections_per_address,
        stripe_publishable_key=config.stripe_publishable_key,
        turnstile_site_key=config.turnstile_site_key,
    )
    """The edge's rules: CORS, trusted proxies, loopback limits, WebSocket caps."""
    http_app = providers.Singleton(
        create_app, app, identity, clock, rate_limits=rate_limits, policy=http_policy
    )
