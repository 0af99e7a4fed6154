"""Seating use cases."""
