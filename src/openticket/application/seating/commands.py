"""Seat commands: one type per seat operation, from the use case to the partition actor.

A command is a frozen msgspec ``Struct`` tagged by ``op``. The same object is what a
use case builds, what ``Seating.ask`` takes, what a partition actor's mailbox holds
and — encoded as it is — what travels over NATS to the worker that owns the
partition (``{"op": "hold", "session_id": …, "area_id": …, …}``). Each command names
its reply type (``SeatCommand[R]``, and ``reply_type`` for decoding it off the wire),
so ``await seating.ask(HoldSeats(...))`` is a ``SeatHold`` to the type checker too.

The rules a command is decided by are the ``SeatInventory``'s (the domain); the actor
only orders, batches and writes through to the lock store what the inventory decides.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from openticket.domain.seating import SeatHold, SeatStatus
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId

R = TypeVar("R")


class SaleRecorded(msgspec.Struct, frozen=True):
    """Reply to ``SellSeats``: the seats are sold to the order (``replayed``: already were)."""

    seat_ids: tuple[SeatId, ...]
    replayed: bool = False


SeatsByStatus = dict[SeatStatus, tuple[SeatId, ...]]
"""Reply to ``ReadSeats``: the seats of each status (smaller than a map of every seat)."""


class SeatCommand(
    msgspec.Struct,
    Generic[R],
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    tag_field="op",
):
    """A command about one session's area, decided by the actor of its partition.

    ``R`` is the reply's type; :attr:`reply_type` is the same at run time.
    """

    reply_type: ClassVar[Any]

    session_id: SessionId
    area_id: AreaId


class HoldSeats(SeatCommand[SeatHold], frozen=True, kw_only=True, omit_defaults=True, tag="hold"):
    """Hold every one of ``seat_ids`` for ``order_id`` for one TTL, or none.

    Replies with the ``SeatHold`` (and its fencing token), or raises ``SeatsUnavailable``
    naming the seats in the way.
    """

    reply_type: ClassVar[Any] = SeatHold

    hold_id: HoldId
    holder_id: UserId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]
    max_seats: int | None = None


class ReleaseSeats(
    SeatCommand[SeatHold], frozen=True, kw_only=True, omit_defaults=True, tag="release"
):
    """Give a live hold's seats back (cancel, failed payment, expired order).

    Replies with the released hold; ``NotHolder`` / ``HoldExpired`` if it is gone.
    """

    reply_type: ClassVar[Any] = SeatHold

    hold_id: HoldId


class ExtendSeats(
    SeatCommand[SeatHold], frozen=True, kw_only=True, omit_defaults=True, tag="extend"
):
    """Keep a live hold for another TTL from now; replies with the extended hold."""

    reply_type: ClassVar[Any] = SeatHold

    hold_id: HoldId


class SellSeats(
    SeatCommand[SaleRecorded], frozen=True, kw_only=True, omit_defaults=True, tag="sell"
):
    """Turn a hold into a sale; the fencing token must be the hold's. Replays are answered."""

    reply_type: ClassVar[Any] = SaleRecorded

    hold_id: HoldId
    fencing_token: int
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]


class ReturnSeats(
    SeatCommand[tuple[SeatId, ...]], frozen=True, kw_only=True, omit_defaults=True, tag="return"
):
    """Make an order's sold seats available again (refund); replies with the seats freed.

    Seats not sold to the order are left alone, so a replay frees nothing and is harmless.
    """

    reply_type: ClassVar[Any] = tuple[SeatId, ...]

    hold_id: HoldId
    order_id: OrderId
    seat_ids: tuple[SeatId, ...]


class ReadSeats(
    SeatCommand[SeatsByStatus], frozen=True, kw_only=True, omit_defaults=True, tag="statuses"
):
    """The status of every seat of the area now, decided in order with the commands."""

    reply_type: ClassVar[Any] = SeatsByStatus


AnySeatCommand = HoldSeats | ReleaseSeats | ExtendSeats | SellSeats | ReturnSeats | ReadSeats
"""Every seat command (the tagged union the wire decodes)."""
