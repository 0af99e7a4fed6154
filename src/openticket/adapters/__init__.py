"""Adapters: the application ports implemented (memory, PostgreSQL, Redis, NATS, payments)."""
