"""NATS JetStream adapters: the event streams, the command path and the KV lock store."""
