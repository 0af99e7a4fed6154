"""Redis tests: the fixtures ``redis_client`` and ``key_prefix`` are in tests/integration."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.redis
