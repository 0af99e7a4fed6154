"""Redis adapters: the hot, short-lived state, and the live fan-out between processes.

Seat locks, rate limits, the waiting room and the seat-status cache live in Redis, and
live feeds reach WebSocket clients of every API process through its pub/sub.

Every adapter takes a ``redis.asyncio.Redis`` client and a key ``prefix`` (default
``openticket:``), so that several deployments or test runs can share one server.
"""
