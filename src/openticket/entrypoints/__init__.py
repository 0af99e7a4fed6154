"""Entrypoints: the composition root, HTTP/WebSocket API, NATS workers and the CLI."""
