"""The pure domain model: aggregates, value objects, events and errors.

Nothing here imports a framework, a driver or a serializer, reads the clock or makes
random ids: time and ids are passed in by the application layer.
"""
