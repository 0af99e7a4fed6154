"""Ticketing use cases."""
