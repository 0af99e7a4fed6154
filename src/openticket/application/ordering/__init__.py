"""Ordering use cases."""
