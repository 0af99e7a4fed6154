"""Redis adapters: the hot, short-lived state (seat locks, rate limits, the waiting room,
the seat-status cache) and the live fan-out between API processes.

Every adapter takes a ``redis.asyncio.Redis`` client and a key ``prefix`` (default
``openticket:``), so that several deployments or test runs can share one server.
"""
