"""The Redis connection of a process: one client (with its pool) for every Redis adapter.

On one server the client is ``redis.asyncio.Redis`` over a blocking pool. On a Redis
Cluster (``cluster=True``, the URL naming any one node) it is
``redis.asyncio.cluster.RedisCluster``, which learns the other nodes and the slot map
from that node, sends each command to the master of its key's slot and follows the
cluster through MOVED redirections and failovers. The adapters take either
(``RedisClient``): every key a script or pipeline step touches together carries the
same hash tag, so each call stays in one slot. How the cluster client is set up, and
why, is in docs/decisions.md ("Redis Cluster").
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis._parsers import AsyncCommandsParser
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    MaxConnectionsError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from openticket.application.ports.errors import AdapterUnavailable

RedisClient: TypeAlias = aioredis.Redis | RedisCluster
"""What every Redis adapter takes: a client of one server, or of a cluster."""

REDIS_FAILURES = (RedisError, RedisClusterException, OSError)
"""What a Redis call may raise: the driver's errors, the cluster client's own (which are
not ``RedisError``: no reachable node, a slot no master covers) and socket errors that
redis-py did not wrap."""

CLUSTER_UNAVAILABLE = (RedisClusterException, ClusterError)
"""The cluster client's ways of saying "not now": no node reachable for a slot, the
cluster down or failing over, redirections that never settled."""

CLUSTER_CONNECTIONS_PER_NODE = 512
"""Connections the cluster client may open to each node.

The cluster client has no blocking pool: a call that finds every connection of a node
busy fails at once (``MaxConnectionsError``) instead of waiting. So the cap is set well
above what one process has in flight, and only guards against a leak.
"""


_NODE_LOST = (RedisConnectionError, RedisTimeoutError, OSError, ClusterDownError)
"""Failures that may mean a node is gone (so the slot map may have changed)."""

UNAVAILABLE: Final = (
    *_NODE_LOST,  # also refused and lost connections, LOADING, a full pool, MASTERDOWN
    TimeoutError,
    OutOfMemoryError,
    ReadOnlyError,  # a replica promoted away from us (failover)
    TryAgainError,
    *CLUSTER_UNAVAILABLE,
)
"""The failures that mean Redis cannot serve now, as opposed to a wrong call."""

_BUSY_REPLIES: Final = ("OOM", "BUSY", "NOREPLICAS", "MASTERDOWN", "LOADING")
"""Error replies that mean 'not now' (Redis is busy, full or failing over), not 'wrong call'."""


def means_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means Redis cannot serve now (down, busy, full, failing over).

    Else it is a wrong call (a bug, a key of another type under our prefix), which
    retrying would not help.
    """
    return isinstance(error, UNAVAILABLE) or (
        isinstance(error, ResponseError) and str(error).startswith(_BUSY_REPLIES)
    )


def unavailable(doing: str, error: BaseException) -> AdapterUnavailable:
    """The port's ``AdapterUnavailable`` for ``error``: ``<doing>: <what Redis said>``.

    Raise it ``from error``. ``doing`` says what failed ("cannot read the seat-status
    cache"); an error without a message is named by its type.
    """
    return AdapterUnavailable(f"{doing}: {str(error).strip() or type(error).__name__}")


_relearning: set[int] = set()
"""The cluster clients (by id) learning their slot map now."""


async def relearn_slots(client: RedisClient, error: BaseException) -> None:
    """After a pipeline met a cluster node that did not answer, learn the slot map anew.

    The cluster client does so by itself after a single command fails, not after a
    pipeline (short of its own retries, which it has not: see ``RedisConnection``), so
    pipelines would go on to a dead master after its replica took over. Nothing on a
    single server.
    """
    if (
        not isinstance(client, RedisCluster)
        or not isinstance(error, _NODE_LOST)
        or isinstance(error, MaxConnectionsError)  # our side's limit, not a node's failure
        or id(client) in _relearning
    ):
        return
    _relearning.add(id(client))
    try:
        with contextlib.suppress(*REDIS_FAILURES):
            await client.nodes_manager.initialize()
    finally:
        _relearning.discard(id(client))


class _CommandTable(AsyncCommandsParser):
    """The cluster client's table of Redis commands, asked of the cluster only once.

    redis-py asks it again of the cluster's first master whenever it learns the slot map
    anew, and fails if that master does not answer: after that master died every call
    of the client failed until its replica took over. The table never changes.
    """

    async def initialize(self, node: ClusterNode | None = None) -> None:
        """Learn the table from ``node`` unless it is known already."""
        if node is not None:
            self.node = node
        if not self.commands:
            await super().initialize()


class RedisUnreachable(AdapterUnavailable):
    """Redis did not answer (down, wrong address, refused the login)."""


class RedisNotAsConfigured(RedisUnreachable):
    """Redis answered, but is not what the settings say: a cluster node or not."""


def where(url: str) -> str:
    """Host, port and database of a Redis URL, without credentials."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{database}"


class RedisConnection:
    """Owns the client the Redis adapters share; a ``Component`` and a health check.

    ``cluster`` says that ``url`` names a node of a Redis Cluster; the client then
    finds the rest. :meth:`start` refuses a server that is not what ``cluster`` says.
    """

    def __init__(
        self,
        url: str,
        *,
        cluster: bool = False,
        timeout: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        self.url = url
        self.cluster = cluster
        self._timeout = timeout
        self.client: RedisClient
        if cluster:
            self.client = RedisCluster.from_url(
                url,
                max_connections=CLUSTER_CONNECTIONS_PER_NODE,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                health_check_interval=30,
                # redis-py retries a failed call by closing every connection of the
                # client, other calls' busy ones too, which then fail as well: one dead
                # master would fail the calls of every master. The callers retry instead
                # (the partition actors' callers, the saga), and a call that failed makes
                # the client learn the slot map again before its next call.
                retry=Retry(NoBackoff(), 0),
            )
            # the table of Redis commands is learned once, not at each new slot map
            self.client.commands_parser = _CommandTable()
        else:
            # a blocking pool: more calls in flight than connections wait for one (up
            # to ``timeout``) instead of failing with "too many connections"
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeout,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                health_check_interval=30,
            )
            self.client = aioredis.Redis(connection_pool=pool)

    @property
    def where(self) -> str:
        """Where the server is, for people."""
        return where(self.url) + (" (a cluster node)" if self.cluster else "")

    async def start(self) -> None:
        """Check that Redis answers and is what ``cluster`` says.

        ``RedisUnreachable`` naming where and why if it does not answer;
        ``RedisNotAsConfigured`` for a cluster node without ``cluster`` or the reverse.
        """
        try:
            found = await asyncio.wait_for(self._cluster_enabled(), self._timeout)
        except (*REDIS_FAILURES, TimeoutError) as e:
            if self.cluster and "cluster mode is not enabled" in str(e).lower():
                raise RedisNotAsConfigured(
                    f"Redis at {where(self.url)} is not a cluster node: unset"
                    " OPENTICKET_REDIS_CLUSTER, or name a node of the cluster"
                ) from e
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RedisUnreachable(f"cannot reach Redis at {self.where}: {reason}") from e
        if found and not self.cluster:
            raise RedisNotAsConfigured(
                f"Redis at {where(self.url)} is a node of a Redis Cluster: set"
                " OPENTICKET_REDIS_CLUSTER=true, so that each key goes to the node of its slot"
            )

    async def _cluster_enabled(self) -> bool:
        """Whether the server is a cluster node (the cluster client learns the slot map)."""
        if isinstance(self.client, RedisCluster):
            await self.client.initialize()
            return True
        info: dict[str, Any] = await self.client.info("cluster")
        return bool(int(info.get("cluster_enabled", 0)))

    async def stop(self) -> None:
        """Close the client's connections (a later use opens new ones)."""
        if isinstance(self.client, RedisCluster):
            await self.client.aclose()
        else:
            await self.client.connection_pool.disconnect()

    async def ping(self) -> bool:
        """Whether Redis serves now (readiness).

        On a cluster: whether a node says ``cluster_state:ok``, i.e. every slot has a
        master that answers; during a failover, until a replica is promoted, it does not.
        """
        try:
            if isinstance(self.client, RedisCluster):
                info = await asyncio.wait_for(
                    self.client.execute_command("CLUSTER INFO"), self._timeout
                )
                return isinstance(info, dict) and info.get("cluster_state") == "ok"
            return bool(await asyncio.wait_for(self.client.ping(), self._timeout))
        except (*REDIS_FAILURES, TimeoutError):
            return False
