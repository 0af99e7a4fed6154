"""What a replicated KV bucket needs of the NATS servers: serialized conditional writes.

The lock store and the partition leases decide everything with conditional writes
(``Nats-Expected-Last-Subject-Sequence``: create-if-absent, update-at-revision). On one
server the check and the write happen together. In a cluster, before nats-server
2.9.21, the stream leader only *pre-checked* the expected revision and then proposed
the write to its RAFT group, so concurrent writes expecting the same revision could all
pass the check and all be stored (nats-server #4320, fixed by #4319 in 2.9.21): two
buyers could both be granted a seat, two workers could both win a partition.
OpenTicket's tests reproduce it on a three-node 2.9.10 cluster.

So a bucket with more than one replica is refused, with that reason, when the server
this process is connected to is older than 2.9.21. Every server of the cluster must be
2.9.21 or newer; a single server (one replica) is safe at any version.
:func:`ensure_kv_bucket` creates such a bucket with that check.
"""

from __future__ import annotations

import asyncio
from typing import Final

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from openticket.adapters.nats.connection import NatsUnreachable
from openticket.adapters.nats.errors import STREAM_NAME_IN_USE
from openticket.application.ports.errors import AdapterUnavailable

SERIALIZED_WRITES_SINCE: Final = (2, 9, 21)
"""The first nats-server release whose clustered conditional writes are serialized."""


class UnsafeNatsServer(NatsUnreachable):
    """The NATS servers cannot keep a guarantee OpenTicket relies on."""


def server_version(js: JetStreamContext) -> tuple[int, int, int] | None:
    """The version of the server ``js``'s client is connected to (None: not known)."""
    client = getattr(js, "_nc", None)  # nats-py keeps the client of a context there
    if not isinstance(client, Client) or not client.is_connected:
        return None
    version = client.connected_server_version
    if not version.major:
        return None
    return (version.major, version.minor, version.patch)


def require_serialized_writes(js: JetStreamContext, replicas: int, *, what: str) -> None:
    """Refuse ``what`` with ``replicas`` replicas on a server before 2.9.21.

    Raises ``UnsafeNatsServer`` (a ``NatsUnreachable``: serve and worker name it in one
    line) for more than one replica on such a server; does nothing otherwise.
    """
    version = server_version(js)
    if replicas > 1 and version is not None and version < SERIALIZED_WRITES_SINCE:
        shown, fixed = (".".join(map(str, v)) for v in (version, SERIALIZED_WRITES_SINCE))
        raise UnsafeNatsServer(
            f"{what} has {replicas} replicas, but nats-server {shown} does not serialize"
            f" conditional writes in a cluster (nats-server #4320, fixed in {fixed}): two"
            f" writers could both win a key. Run nats-server {fixed} or newer on every"
            " node, or one replica (OPENTICKET_NATS_REPLICAS=1)."
        )


async def ensure_kv_bucket(
    js: JetStreamContext,
    bucket: str,
    *,
    description: str,
    replicas: int,
    what: str,
    open_it: bool = False,
) -> tuple[KeyValue | None, api.StreamInfo]:
    """Create the KV bucket unless it exists; the bucket (if made now, or ``open_it``).

    The bucket keeps history 1 on file storage with direct get and ``replicas``; its
    stream's info is answered too. Idempotent; a bucket that exists with another configuration
    (:data:`~.errors.STREAM_NAME_IN_USE`) is used as it is. A replicated bucket, asked
    for or found, on a server whose clustered conditional writes are not serialized is
    refused: ``UnsafeNatsServer`` naming ``what``. A server that cannot be reached or
    refuses: ``AdapterUnavailable`` naming the bucket.
    """
    config = api.KeyValueConfig(
        bucket=bucket,
        description=description,
        history=1,
        storage=api.StorageType.FILE,
        replicas=replicas,
        direct=True,
    )
    require_serialized_writes(js, replicas, what=what)
    try:
        kv: KeyValue | None = None
        try:
            kv = await js.create_key_value(config)
        except BadRequestError as e:
            if e.err_code != STREAM_NAME_IN_USE:
                raise
        info = await _stream_info(js, f"KV_{bucket}")
        require_serialized_writes(js, info.config.num_replicas or 1, what=what)
        if kv is None and open_it:
            kv = await js.key_value(bucket)
    except (nats.errors.Error, OSError) as e:
        raise AdapterUnavailable(f"NATS KV bucket {bucket} unavailable: {e!r}") from e
    return kv, info


NEW_STREAM_PATIENCE: Final = 5.0
"""Seconds a stream just made (by us or another process) may stay unknown to a node."""


async def _stream_info(js: JetStreamContext, stream: str) -> api.StreamInfo:
    """The stream's info, waiting a little for a stream just made to reach this node.

    In a cluster, the server a client talks to may not know of a stream another node
    has just created (10059, "stream not found") until the assignment reaches it: seen
    when two workers made the same bucket at once on three replicas.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + NEW_STREAM_PATIENCE
    while True:
        try:
            return await js.stream_info(stream)
        except NotFoundError:
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.1)
