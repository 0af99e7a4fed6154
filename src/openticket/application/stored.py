"""What a use case stored a moment ago, for the saga steps it sets off in process.

Paying with a provider that settles at once (the mock) stores the order and the payment,
then runs the saga's next step inline, which would read both again. Inside
:func:`stored_scope`, a use case that committed an aggregate remembers a copy of it at
its stored version (:func:`remember`), and the step starts from that copy
(:func:`recall`) instead of a round trip to the database.

It is a hint, not a cache. Every write made from a recalled copy is checked by version
when it commits, and a step that finds the copy stale reads afresh. Nothing outlives
the scope: it is the caller's context, so a worker's consumer, which runs outside any
scope, reads as it always did.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import TypeVar

from openticket.domain.shared import Aggregate

A = TypeVar("A", bound=Aggregate)

_stored: ContextVar[dict[tuple[type[Aggregate], object], Aggregate] | None] = ContextVar(
    "openticket_stored", default=None
)


class stored_scope:  # noqa: N801  # used as a function: ``with stored_scope():``
    """Remember what is stored inside the block, and forget it after."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token: Token[dict[tuple[type[Aggregate], object], Aggregate] | None] = _stored.set({})

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _stored.reset(self._token)


def remember(key: object, aggregate: Aggregate) -> None:
    """A copy of ``aggregate``, just committed, for later steps of the scope (if any)."""
    stored = _stored.get()
    if stored is not None:
        stored[(type(aggregate), key)] = aggregate.detached_copy()


def recall(kind: type[A], key: object) -> A | None:
    """The copy of the ``kind`` with ``key`` as this scope stored it last, if it did.

    Handed out once (the caller may change it): asked again, the scope knows nothing
    of it until it is remembered again.
    """
    stored = _stored.get()
    found = None if stored is None else stored.pop((kind, key), None)
    return found if isinstance(found, kind) else None
