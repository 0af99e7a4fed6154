"""Application layer: ports, use cases, partition actors and the message bus."""
