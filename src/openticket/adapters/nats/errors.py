"""NATS and JetStream errors the adapters treat alike."""

from __future__ import annotations

from typing import Final

import nats.errors
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

UNREACHABLE: Final = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    NoStreamResponseError,
    ServiceUnavailableError,
    OSError,
)
"""Errors that mean the server (or its JetStream) cannot be reached now."""

STREAM_NAME_IN_USE: Final = 10058
"""JetStream's ``err_code`` for creating a stream (or KV bucket) whose name is taken.

It exists with another configuration than the one sent: created meanwhile by someone
else, or set up differently by an operator or an earlier release.
"""
