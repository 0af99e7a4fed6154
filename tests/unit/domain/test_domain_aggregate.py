from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import attrs
import pytest

from openticket.domain.identity import Role, User
from openticket.domain.seating import SeatsReleased
from openticket.domain.shared import (
    Aggregate,
    AreaId,
    DomainError,
    HoldId,
    InvalidTransition,
    OrderId,
    SeatId,
    SessionId,
    UserId,
    ValidationError,
    require_aware,
)


def released(number: int, now: datetime) -> SeatsReleased:
    return SeatsReleased(
        event_id=UUID(int=number),
        occurred_at=now,
        session_id=SessionId(UUID(int=1)),
        area_id=AreaId("A"),
        hold_id=HoldId(UUID(int=2)),
        order_id=OrderId(UUID(int=3)),
        seat_ids=(SeatId("A-1-1"),),
    )


def user(now: datetime) -> User:
    return User(
        user_id=UserId(UUID(int=1)),
        email="a@b.co",
        display_name="A",
        password_hash="h",
        created_at=now,
    )


def test_collect_events_hands_out_each_event_once_in_order(now: datetime) -> None:
    aggregate = user(now)
    aggregate.record(released(1, now))
    aggregate.record(released(2, now))
    assert aggregate.has_pending_events
    assert [e.event_id for e in aggregate.collect_events()] == [UUID(int=1), UUID(int=2)]
    assert aggregate.collect_events() == []
    assert not aggregate.has_pending_events


def test_a_detached_copy_has_the_same_state_and_no_pending_events(now: datetime) -> None:
    aggregate = user(now)
    aggregate.record(released(1, now))
    copy = aggregate.detached_copy()
    assert copy == aggregate
    assert copy.collect_events() == []
    copy.grant(Role.ADMIN)
    assert aggregate.roles == frozenset({Role.BUYER})
    assert aggregate.has_pending_events


class _Tally(dict[str, int]):
    """A container of a type the copier does not know by name."""


@attrs.define(kw_only=True)
class _Slotted(Aggregate):
    names: list[str]
    counts: dict[str, int]
    tally: _Tally
    label: str = "x"


@attrs.define(kw_only=True, slots=False)
class _WithDict(Aggregate):
    names: list[str]


@pytest.mark.parametrize("kind", [_Slotted, _WithDict])
def test_a_detached_copy_shares_no_container_with_the_original(kind: type[Aggregate]) -> None:
    if kind is _Slotted:
        original: Aggregate = _Slotted(names=["a"], counts={"a": 1}, tally=_Tally(a=1), version=3)
    else:
        original = _WithDict(names=["a"], version=3)
    original.record(released(1, datetime(2030, 1, 1, tzinfo=UTC)))
    copy = original.detached_copy()
    assert copy == original
    assert type(copy) is kind
    assert copy.version == 3
    assert not copy.has_pending_events
    assert original.has_pending_events
    copy.names.append("b")  # type: ignore[attr-defined]
    assert original.names == ["a"]  # type: ignore[attr-defined]
    if isinstance(copy, _Slotted) and isinstance(original, _Slotted):
        copy.counts["b"] = 2
        copy.tally["b"] = 2
        assert original.counts == {"a": 1}
        assert original.tally == _Tally(a=1)
        assert type(copy.tally) is _Tally


def test_an_events_type_is_its_class_name(now: datetime) -> None:
    assert released(1, now).event_type == "SeatsReleased"


def test_naive_times_are_refused(now: datetime) -> None:
    assert require_aware(now, "now") is now
    with pytest.raises(ValidationError, match="now must be timezone-aware"):
        require_aware(now.replace(tzinfo=None), "now")


def test_domain_errors_carry_a_stable_code_and_their_message() -> None:
    error = InvalidTransition("order", "created", "refunded")
    assert isinstance(error, DomainError)
    assert error.code == "invalid_transition"
    assert (error.aggregate, error.current, error.attempted) == ("order", "created", "refunded")
    assert "created" in error.message
