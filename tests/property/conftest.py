"""Hypothesis profiles for the property suites.

``default`` keeps a local run quick; ``ci`` tries more examples, never fails on a slow
example (shared CI runners stall) and prints a reproduction blob for every failure.
``ci`` is loaded when ``CI`` is set; ``HYPOTHESIS_PROFILE=<name>`` picks any profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=100)
settings.register_profile(
    "ci",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)

settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)
