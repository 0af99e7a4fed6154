"""The signal counter: how often something happened lately, in sliding windows.

The bot defence counts joins and orders per account, per address and per device, and
the distinct accounts seen behind an address, over the last minute or minutes. Every
API process must see the same counts, so they live behind this port: in process
memory for the embedded profile, in Redis for several processes.

All the counts one request needs are asked for in one call (a list of
:class:`Tally`), so that an adapter over the network answers in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

_MILLISECOND = timedelta(milliseconds=1)


def _at_least_a_millisecond(
    _: object, attribute: attrs.Attribute[timedelta], value: timedelta
) -> None:
    if value < _MILLISECOND:
        raise ValueError(f"{attribute.name} must be at least 1 ms, got {value}")


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _a_key(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


@attrs.frozen(kw_only=True)
class Tally:
    """One count to take: of ``key``'s entries in the last ``window``.

    With ``member`` unset, each counted call is one more entry (requests per account);
    with ``member`` set, the entries are the distinct members, each counted once
    however often it is seen, from its latest sighting (accounts per address). With
    ``add`` false the call only reads the count, and counts nothing.

    ``cap`` bounds what a key keeps: only its newest ``cap`` entries, so the count
    stops at ``cap`` and a flood costs no more than that. Windows are cut to whole
    milliseconds.
    """

    key: str = attrs.field(validator=_a_key)
    window: timedelta = attrs.field(validator=_at_least_a_millisecond)
    member: str | None = None
    add: bool = True
    cap: int = attrs.field(default=1000, validator=_positive)


@runtime_checkable
class SignalCounter(Protocol):
    """Sliding-window counts per key, shared by every process that uses the same store.

    Rules every adapter keeps (``openticket.testing.contracts.signal_counter`` checks
    them):

    - An entry counts from its moment until one window later, that moment excluded
      (to the millisecond); the answer for a tally is the count after the call's own
      entry, if it adds one.
    - A distinct member counts once, from its latest sighting; seeing it again moves
      that sighting forward, never back.
    - Each tally's step is atomic on its key: of concurrent calls adding new entries
      to one key, each is told a different count (below the cap).
    - A key keeps only its newest ``cap`` entries; a key none of whose entries counts
      any more is forgotten (its memory is freed).
    - Keys are independent; use one window (and one kind: plain or distinct) per key.
    - "Now" is the ``now`` given with each call, not a clock of the adapter's own, so
      the counts are deterministic given the caller's clock.

    Raises ``AdapterUnavailable`` when the backing service cannot be reached; what the
    call added is then unknown.
    """

    async def count(self, tallies: Sequence[Tally], *, now: datetime) -> tuple[int, ...]:
        """Take each tally at ``now``, in one step, and answer their counts in order."""
        ...
