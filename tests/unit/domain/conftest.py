"""Fixtures shared by the domain unit tests: a fixed moment and deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openticket.adapters.memory.clock import SequentialIdGenerator


@pytest.fixture
def now() -> datetime:
    return datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ids() -> SequentialIdGenerator:
    return SequentialIdGenerator(seed=42)
