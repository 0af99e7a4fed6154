"""The garbage collector of a long-running process, set for a server's heap.

CPython collects its youngest generation every 700 net allocations of container
objects, and each collection looks at every young object still alive: under load,
mostly the state of the requests in flight. What survives two collections joins the
oldest generation, whose full collections walk the whole heap. In a server answering
hundreds of requests a second, that made the embedded `serve` spend a quarter of its
CPU in the collector, with pauses of up to 0.3 s (``docs/performance.md``).

A process that is up therefore freezes what start-up made (modules, the app, the
container: never garbage, never walked again) and collects its young generation every
:data:`YOUNG_GENERATION` allocations, so that requests in flight are walked far less
often and far fewer of them are promoted to live forever.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION = 10_000
"""Net allocations between collections of the youngest generation (CPython's: 700)."""


def settle_heap() -> None:
    """Collect once, freeze the survivors of start-up, and collect less often from now."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)
