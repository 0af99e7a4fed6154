"""The ``LockStore`` contract: atomic seat locks with fencing tokens, written in batches.

One module, over 500 lines: a contract suite is one class an adapter subclasses.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import uuid4

import attrs

from openticket.application.ports.clock import Clock
from openticket.application.ports.lock_store import (
    AcquireHold,
    Done,
    ExtendHold,
    Granted,
    LockOp,
    LockResult,
    LockStore,
    MarkSold,
    Refused,
    ReleaseHold,
    ReleaseSold,
    RestoreHold,
)
from openticket.domain.seating import InventorySnapshot, SeatHold
from openticket.domain.shared import AreaId, HoldId, OrderId, SeatId, SessionId, UserId
from openticket.testing.contracts._builders import seat
from openticket.testing.contracts._clock import ClockedContract

RACE_TTLS = 60.0
"""Hold TTLs the holds of the race tests live: a slow machine's race never outlasts them."""


class LockStoreContract(ClockedContract):
    """What every ``LockStore`` adapter must do (reliability.md #1, #3, #4).

    Subclass it once per adapter and define the async fixture ``lock_store``, which
    yields a store built with the ``clock`` fixture. The default ``clock`` is a
    ``FakeClock`` and :meth:`pass_time` moves it; an adapter whose locks expire in
    real time (Redis) overrides ``clock`` with a system clock and ``pass_time`` with a
    real sleep. Every test uses fresh random session ids, so a shared server is fine.
    """

    hold_ttl: float = 1.0
    """Seconds a test hold lives. Tests pass time in fractions and multiples of it."""

    concurrent_buyers: int = 1000
    """How many buyers race for one seat in the contention test."""

    counts_its_tokens: bool = True
    """Whether tokens come from a counter the store keeps, which an acquire's
    ``after_token`` raises and a ``RestoreHold`` sets — so the store can lose its state
    and catch up with what its callers saw.

    A store whose tokens are its own write revisions (NATS KV) can do neither: it ignores
    ``after_token``, refuses every restore, and the database's fence carries a sale
    whose locks it lost. It keeps its state on disk instead.
    """

    # --- helpers ---------------------------------------------------------------------

    def _expiry(self, clock: Clock, ttls: float) -> datetime:
        """``ttls`` hold TTLs from now, cut to whole milliseconds (what every store keeps)."""
        at = clock.now() + timedelta(seconds=ttls * self.hold_ttl)
        return at.replace(microsecond=at.microsecond // 1000 * 1000)

    def _acquire(
        self,
        clock: Clock,
        session_id: SessionId,
        seat_ids: Sequence[SeatId],
        *,
        area_id: str = "A",
        ttls: float = 1.0,
    ) -> AcquireHold:
        """A hold request of a new buyer for ``seat_ids``, living ``ttls`` hold TTLs."""
        return AcquireHold(
            hold_id=HoldId(uuid4()),
            session_id=session_id,
            area_id=AreaId(area_id),
            holder_id=UserId(uuid4()),
            order_id=OrderId(uuid4()),
            seat_ids=tuple(seat_ids),
            expires_at=self._expiry(clock, ttls),
        )

    async def _run(self, store: LockStore, *ops: LockOp) -> list[LockResult]:
        results = await store.execute(ops)
        assert len(results) == len(ops), f"{len(ops)} ops answered with {len(results)} results"
        return results

    async def _grant(self, store: LockStore, op: AcquireHold) -> SeatHold:
        (result,) = await self._run(store, op)
        assert isinstance(result, Granted), f"expected Granted for {op.seat_ids}, got {result}"
        return result.hold

    async def _assert_free(
        self, store: LockStore, clock: Clock, session: SessionId, *s: SeatId
    ) -> None:
        """Assert that every seat can be held now; the probe hold is released at once."""
        probe = self._acquire(clock, session, s)
        (result,) = await self._run(store, probe)
        assert isinstance(result, Granted), f"expected {s} to be free, got {result}"
        release = ReleaseHold(
            session_id=session, area_id=probe.area_id, hold_id=probe.hold_id, seat_ids=s
        )
        await self._run(store, release)

    async def _refused_by(
        self, store: LockStore, clock: Clock, session: SessionId, *s: SeatId
    ) -> set[SeatId]:
        """The seats that stand in the way of a fresh hold on ``s`` (the hold must be refused)."""
        (result,) = await self._run(store, self._acquire(clock, session, s))
        assert isinstance(result, Refused), f"expected {s} to be taken, got {result}"
        return set(result.seat_ids)

    @staticmethod
    def _session() -> SessionId:
        return SessionId(uuid4())

    @staticmethod
    def _hold_in(snapshot: InventorySnapshot, hold_id: HoldId) -> SeatHold:
        found = [h for h in snapshot.holds if h.hold_id == hold_id]
        assert len(found) == 1, f"hold {hold_id} appears {len(found)} times in {snapshot}"
        return found[0]

    # --- acquiring -------------------------------------------------------------------

    async def test_acquire_grants_the_hold_as_requested(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """A granted hold carries the request's fields and a positive fencing token."""
        session = self._session()
        op = self._acquire(clock, session, (seat("A", 1, 1), seat("A", 1, 2)))
        hold = await self._grant(lock_store, op)
        assert hold.hold_id == op.hold_id
        assert hold.session_id == session
        assert hold.area_id == op.area_id
        assert hold.holder_id == op.holder_id
        assert hold.order_id == op.order_id
        assert set(hold.seat_ids) == set(op.seat_ids)
        assert len(hold.seat_ids) == len(op.seat_ids)
        assert hold.expires_at == op.expires_at
        assert hold.fencing_token > 0

    async def test_acquire_is_all_or_nothing(self, lock_store: LockStore, clock: Clock) -> None:
        """A hold with one taken seat locks none of its seats."""
        session = self._session()
        s1, s2, s3 = seat("A", 1, 1), seat("A", 1, 2), seat("A", 1, 3)
        await self._grant(lock_store, self._acquire(clock, session, (s2,)))
        blocked = self._acquire(clock, session, (s1, s2, s3))
        (result,) = await self._run(lock_store, blocked)
        assert isinstance(result, Refused)
        await self._assert_free(lock_store, clock, session, s1, s3)
        snapshot = await lock_store.load(session, AreaId("A"))
        assert blocked.hold_id not in {h.hold_id for h in snapshot.holds}

    async def test_conflicting_acquire_is_refused_with_exactly_the_seats_in_the_way(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The refusal names the held and the sold seats of the request, and only those."""
        session = self._session()
        held = (seat("A", 1, 1), seat("A", 1, 2))
        sold_seat, free_seat = seat("A", 1, 3), seat("A", 1, 4)
        await self._grant(lock_store, self._acquire(clock, session, held))
        to_sell = await self._grant(lock_store, self._acquire(clock, session, (sold_seat,)))
        await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=to_sell.area_id,
                hold_id=to_sell.hold_id,
                seat_ids=to_sell.seat_ids,
                fencing_token=to_sell.fencing_token,
            ),
        )
        (result,) = await self._run(
            lock_store, self._acquire(clock, session, (free_seat, held[1], sold_seat))
        )
        assert isinstance(result, Refused)
        assert sorted(result.seat_ids) == sorted((held[1], sold_seat))

    async def test_holds_of_other_sessions_do_not_conflict(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The same seat id is a different seat in another session."""
        session, other = self._session(), self._session()
        s = (seat("A", 1, 1),)
        await self._grant(lock_store, self._acquire(clock, session, s))
        await self._grant(lock_store, self._acquire(clock, other, s))

    # --- fencing tokens ----------------------------------------------------------------

    async def test_fencing_tokens_strictly_increase_across_batches(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Every later grant in a partition gets a larger token than every earlier one."""
        session = self._session()
        tokens = []
        for number in range(1, 5):
            hold = await self._grant(
                lock_store, self._acquire(clock, session, (seat("A", 1, number),))
            )
            tokens.append(hold.fencing_token)
        assert all(a < b for a, b in itertools.pairwise(tokens)), tokens

    async def test_fencing_tokens_strictly_increase_within_one_batch(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Grants of one batch get increasing tokens in op order, above earlier grants."""
        session = self._session()
        first = await self._grant(lock_store, self._acquire(clock, session, (seat("A", 1, 1),)))
        results = await self._run(
            lock_store, *(self._acquire(clock, session, (seat("A", 2, n),)) for n in range(1, 5))
        )
        tokens = [first.fencing_token]
        for result in results:
            assert isinstance(result, Granted)
            tokens.append(result.hold.fencing_token)
        assert all(a < b for a, b in itertools.pairwise(tokens)), tokens

    async def test_a_new_hold_on_an_expired_seat_gets_a_larger_token(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The next holder of a seat always outranks the holder whose lock ran out."""
        session = self._session()
        s = seat("A", 1, 1)
        first = await self._grant(lock_store, self._acquire(clock, session, (s,)))
        await self.pass_time(clock, self.hold_ttl)
        second = await self._grant(lock_store, self._acquire(clock, session, (s,)))
        assert second.fencing_token > first.fencing_token

    # --- batches -----------------------------------------------------------------------

    async def test_ops_of_one_batch_apply_in_order_and_see_each_other(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Two holds of one seat in a batch: the first wins; a release frees it for the next."""
        session = self._session()
        s = seat("A", 1, 1)
        first, second = self._acquire(clock, session, (s,)), self._acquire(clock, session, (s,))
        results = await self._run(lock_store, first, second)
        assert isinstance(results[0], Granted)
        assert results[0].hold.hold_id == first.hold_id
        assert results[1] == Refused((s,))

        third = self._acquire(clock, session, (s,))
        results = await self._run(
            lock_store,
            ReleaseHold(
                session_id=session, area_id=first.area_id, hold_id=first.hold_id, seat_ids=(s,)
            ),
            third,
        )
        assert results[0] == Done((s,))
        assert isinstance(results[1], Granted)
        snapshot = await lock_store.load(session, AreaId("A"))
        assert [h.hold_id for h in snapshot.holds] == [third.hold_id]

    async def test_an_empty_batch_answers_nothing(self, lock_store: LockStore) -> None:
        """``execute([])`` is a no-op with no results."""
        assert await lock_store.execute([]) == []

    # --- releasing ---------------------------------------------------------------------

    async def test_release_by_the_holder_frees_every_seat(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The right hold id unlocks all its seats and says which."""
        session = self._session()
        s = (seat("A", 1, 1), seat("A", 1, 2))
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        (result,) = await self._run(
            lock_store,
            ReleaseHold(session_id=session, area_id=hold.area_id, hold_id=hold.hold_id, seat_ids=s),
        )
        assert isinstance(result, Done)
        assert sorted(result.seat_ids) == sorted(s)
        await self._assert_free(lock_store, clock, session, *s)
        assert (await lock_store.load(session, AreaId("A"))).holds == ()

    async def test_release_by_a_wrong_hold_id_changes_nothing(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Only the matching hold id releases a lock."""
        session = self._session()
        s = (seat("A", 1, 1), seat("A", 1, 2))
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        (result,) = await self._run(
            lock_store,
            ReleaseHold(
                session_id=session, area_id=AreaId("A"), hold_id=HoldId(uuid4()), seat_ids=s
            ),
        )
        assert result == Done(()) or isinstance(result, Refused), result
        assert await self._refused_by(lock_store, clock, session, *s) == set(s)
        snapshot = await lock_store.load(session, AreaId("A"))
        assert self._hold_in(snapshot, hold.hold_id) == hold

    async def test_release_after_expiry_leaves_the_new_holders_lock_alone(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """An expired holder's release or extend does not touch the next holder's lock."""
        session = self._session()
        s = seat("A", 1, 1)
        old = await self._grant(lock_store, self._acquire(clock, session, (s,)))
        await self.pass_time(clock, self.hold_ttl)
        new = await self._grant(lock_store, self._acquire(clock, session, (s,), ttls=2))

        results = await self._run(
            lock_store,
            ReleaseHold(
                session_id=session, area_id=old.area_id, hold_id=old.hold_id, seat_ids=(s,)
            ),
            ExtendHold(
                session_id=session,
                area_id=old.area_id,
                hold_id=old.hold_id,
                seat_ids=(s,),
                expires_at=self._expiry(clock, 10),
            ),
        )
        assert results[0] == Done(()) or isinstance(results[0], Refused), results[0]
        assert isinstance(results[1], Refused), results[1]
        assert await self._refused_by(lock_store, clock, session, s) == {s}
        snapshot = await lock_store.load(session, AreaId("A"))
        assert [h.hold_id for h in snapshot.holds] == [new.hold_id]
        assert self._hold_in(snapshot, new.hold_id).expires_at == new.expires_at

    # --- extending ---------------------------------------------------------------------

    async def test_extend_by_the_holder_moves_the_expiry(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """An extended hold outlives its first expiry, keeps its token, and ends at the new one."""
        session = self._session()
        s = (seat("A", 1, 1), seat("A", 1, 2))
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        later = self._expiry(clock, 2)
        (result,) = await self._run(
            lock_store,
            ExtendHold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=s,
                expires_at=later,
            ),
        )
        assert isinstance(result, Done)
        assert sorted(result.seat_ids) == sorted(s)
        extended = self._hold_in(await lock_store.load(session, AreaId("A")), hold.hold_id)
        assert extended.expires_at == later
        assert extended.fencing_token == hold.fencing_token

        await self.pass_time(clock, 1.5 * self.hold_ttl)
        assert await self._refused_by(lock_store, clock, session, *s) == set(s)
        await self.pass_time(clock, 0.5 * self.hold_ttl)
        await self._assert_free(lock_store, clock, session, *s)

    async def test_an_extended_hold_sells_with_its_original_token(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Extending does not change the token an order recorded when the hold was granted."""
        session = self._session()
        s = (seat("A", 1, 1),)
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        extend = ExtendHold(
            session_id=session,
            area_id=hold.area_id,
            hold_id=hold.hold_id,
            seat_ids=s,
            expires_at=self._expiry(clock, 2),
        )
        sell = MarkSold(
            session_id=session,
            area_id=hold.area_id,
            hold_id=hold.hold_id,
            seat_ids=s,
            fencing_token=hold.fencing_token,
        )
        assert await self._run(lock_store, extend, sell) == [Done(s), Done(s)]

    async def test_extend_by_a_wrong_hold_id_is_refused_and_changes_nothing(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """A stranger cannot move someone else's expiry."""
        session = self._session()
        s = (seat("A", 1, 1),)
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        (result,) = await self._run(
            lock_store,
            ExtendHold(
                session_id=session,
                area_id=AreaId("A"),
                hold_id=HoldId(uuid4()),
                seat_ids=s,
                expires_at=self._expiry(clock, 5),
            ),
        )
        assert isinstance(result, Refused)
        snapshot = await lock_store.load(session, AreaId("A"))
        assert self._hold_in(snapshot, hold.hold_id).expires_at == hold.expires_at
        await self.pass_time(clock, self.hold_ttl)
        await self._assert_free(lock_store, clock, session, *s)

    async def test_extend_of_an_expired_hold_is_refused(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """A hold past its expiry cannot be brought back, even if nobody took its seats."""
        session = self._session()
        s = (seat("A", 1, 1),)
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        await self.pass_time(clock, self.hold_ttl)
        (result,) = await self._run(
            lock_store,
            ExtendHold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=s,
                expires_at=self._expiry(clock, 5),
            ),
        )
        assert isinstance(result, Refused)
        await self._assert_free(lock_store, clock, session, *s)

    async def test_extend_is_refused_unless_the_hold_locks_every_listed_seat(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Listing a seat another hold locks refuses the extension; neither hold changes."""
        session = self._session()
        mine, theirs = seat("A", 1, 1), seat("A", 1, 2)
        hold = await self._grant(lock_store, self._acquire(clock, session, (mine,)))
        other = await self._grant(lock_store, self._acquire(clock, session, (theirs,)))
        (result,) = await self._run(
            lock_store,
            ExtendHold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=(mine, theirs),
                expires_at=self._expiry(clock, 5),
            ),
        )
        assert isinstance(result, Refused)
        snapshot = await lock_store.load(session, AreaId("A"))
        assert self._hold_in(snapshot, hold.hold_id) == hold
        assert self._hold_in(snapshot, other.hold_id) == other

    # --- selling -----------------------------------------------------------------------

    async def test_tokens_exceed_the_newest_one_the_caller_saw(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """A store that forgot its counter does not hand out an old token again."""
        if not self.counts_its_tokens:
            return
        session = self._session()
        seen = await self._grant(lock_store, self._acquire(clock, session, (seat("A", 1, 1),)))
        floor = seen.fencing_token + 1000
        lifted = await self._grant(
            lock_store,
            attrs.evolve(self._acquire(clock, session, (seat("A", 1, 2),)), after_token=floor),
        )
        assert lifted.fencing_token > floor
        after = await self._grant(lock_store, self._acquire(clock, session, (seat("A", 1, 3),)))
        assert after.fencing_token > lifted.fencing_token

    # --- restoring a hold the store lost ------------------------------------------------

    def _lost_hold(self, clock: Clock, session: SessionId, *s: SeatId, token: int) -> SeatHold:
        """A hold as its owner remembers it, which this store never saw (it lost it)."""
        return SeatHold(
            hold_id=HoldId(uuid4()),
            session_id=session,
            area_id=AreaId("A"),
            holder_id=UserId(uuid4()),
            order_id=OrderId(uuid4()),
            seat_ids=s,
            fencing_token=token,
            expires_at=self._expiry(clock, 1.0),
        )

    async def test_a_restored_hold_sells_with_its_own_token(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The owner locks a lost hold again as it was; the buyer's payment then sells it."""
        if not self.counts_its_tokens:
            return
        session = self._session()
        s = (seat("A", 1, 1), seat("A", 1, 2))
        lost = self._lost_hold(clock, session, *s, token=500)
        (restored,) = await self._run(lock_store, RestoreHold(hold=lost))
        assert isinstance(restored, Done)
        (again,) = await self._run(lock_store, RestoreHold(hold=lost))
        assert isinstance(again, Done)  # a retry
        assert await self._refused_by(lock_store, clock, session, *s) == set(s)
        (sold,) = await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=lost.area_id,
                hold_id=lost.hold_id,
                seat_ids=s,
                fencing_token=500,
            ),
        )
        assert isinstance(sold, Done)
        later = await self._grant(lock_store, self._acquire(clock, session, (seat("A", 1, 3),)))
        assert later.fencing_token > 500  # the counter caught up with the restored token

    async def test_a_restore_never_takes_a_seat_someone_else_holds_or_bought(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The store's live locks and sales win: a restore over them changes nothing."""
        session = self._session()
        held = await self._grant(lock_store, self._acquire(clock, session, (seat("A", 1, 1),)))
        bought = await self._grant(lock_store, self._acquire(clock, session, (seat("A", 1, 2),)))
        await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=bought.area_id,
                hold_id=bought.hold_id,
                seat_ids=bought.seat_ids,
                fencing_token=bought.fencing_token,
            ),
        )
        for taken in (seat("A", 1, 1), seat("A", 1, 2)):
            lost = self._lost_hold(clock, session, taken, seat("A", 1, 3), token=1)
            (result,) = await self._run(lock_store, RestoreHold(hold=lost))
            assert isinstance(result, Refused)
            if self.counts_its_tokens:
                assert result.seat_ids == (taken,)
        await self._assert_free(lock_store, clock, session, seat("A", 1, 3))
        snapshot = await lock_store.load(session, AreaId("A"))
        assert self._hold_in(snapshot, held.hold_id) == held

    async def test_mark_sold_with_the_holds_token_sells_for_good(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """A sold seat is never held again, not even long after the hold would have expired."""
        session = self._session()
        s = (seat("A", 1, 1), seat("A", 1, 2))
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        (result,) = await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=s,
                fencing_token=hold.fencing_token,
            ),
        )
        assert isinstance(result, Done)
        assert sorted(result.seat_ids) == sorted(s)
        assert await self._refused_by(lock_store, clock, session, *s) == set(s)
        await self.pass_time(clock, 1.5 * self.hold_ttl)
        assert await self._refused_by(lock_store, clock, session, *s) == set(s)
        snapshot = await lock_store.load(session, AreaId("A"))
        assert dict(snapshot.sold) == dict.fromkeys(s, hold.order_id)
        assert snapshot.holds == ()

    async def test_mark_sold_with_a_wrong_token_is_refused_and_changes_nothing(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The hold id alone does not sell: the token must be the hold's own."""
        session = self._session()
        s = (seat("A", 1, 1),)
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        for token in (hold.fencing_token - 1, hold.fencing_token + 1):
            (result,) = await self._run(
                lock_store,
                MarkSold(
                    session_id=session,
                    area_id=hold.area_id,
                    hold_id=hold.hold_id,
                    seat_ids=s,
                    fencing_token=token,
                ),
            )
            assert isinstance(result, Refused), f"token {token}: {result}"
        snapshot = await lock_store.load(session, AreaId("A"))
        assert dict(snapshot.sold) == {}
        assert self._hold_in(snapshot, hold.hold_id) == hold
        (result,) = await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=s,
                fencing_token=hold.fencing_token,
            ),
        )
        assert result == Done(s)

    async def test_a_sale_with_a_superseded_token_is_refused(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Token N after N+1 was granted for the seat: refused, the new hold stays (#4)."""
        session = self._session()
        s = (seat("A", 1, 1),)
        old = await self._grant(lock_store, self._acquire(clock, session, s))
        await self.pass_time(clock, self.hold_ttl)
        new = await self._grant(lock_store, self._acquire(clock, session, s))

        results = await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=old.area_id,
                hold_id=old.hold_id,
                seat_ids=s,
                fencing_token=old.fencing_token,
            ),
            MarkSold(
                session_id=session,
                area_id=new.area_id,
                hold_id=new.hold_id,
                seat_ids=s,
                fencing_token=old.fencing_token,
            ),
        )
        assert all(isinstance(r, Refused) for r in results), results
        snapshot = await lock_store.load(session, AreaId("A"))
        assert dict(snapshot.sold) == {}
        assert [h.hold_id for h in snapshot.holds] == [new.hold_id]

    async def test_mark_sold_of_an_expired_hold_is_refused(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """A holder whose lock ran out cannot sell, even if nobody took the seat meanwhile."""
        session = self._session()
        s = (seat("A", 1, 1),)
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        await self.pass_time(clock, self.hold_ttl)
        (result,) = await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=s,
                fencing_token=hold.fencing_token,
            ),
        )
        assert isinstance(result, Refused)
        await self._assert_free(lock_store, clock, session, *s)

    async def test_release_sold_makes_the_seats_available_again(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """A refund's ``ReleaseSold`` lets the next buyer hold the seats."""
        session = self._session()
        s = (seat("A", 1, 1), seat("A", 1, 2))
        hold = await self._grant(lock_store, self._acquire(clock, session, s))
        await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=hold.area_id,
                hold_id=hold.hold_id,
                seat_ids=s,
                fencing_token=hold.fencing_token,
            ),
        )
        (result,) = await self._run(
            lock_store, ReleaseSold(session_id=session, area_id=AreaId("A"), seat_ids=s)
        )
        assert isinstance(result, Done)
        assert sorted(result.seat_ids) == sorted(s)
        assert dict((await lock_store.load(session, AreaId("A"))).sold) == {}
        again = await self._grant(lock_store, self._acquire(clock, session, s))
        assert again.fencing_token > hold.fencing_token

    # --- expiry ------------------------------------------------------------------------

    async def test_a_lock_is_gone_once_its_expiry_passes(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Held strictly before ``expires_at``; free for anyone from then on."""
        session = self._session()
        s = (seat("A", 1, 1), seat("A", 1, 2))
        await self._grant(lock_store, self._acquire(clock, session, s))
        await self.pass_time(clock, 0.5 * self.hold_ttl)
        assert await self._refused_by(lock_store, clock, session, *s) == set(s)
        await self.pass_time(clock, 0.5 * self.hold_ttl)
        await self._grant(lock_store, self._acquire(clock, session, s))

    # --- loading -----------------------------------------------------------------------

    async def test_load_returns_exactly_the_partitions_live_holds_and_sold_seats(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """What an actor rebuilds from: nothing of other areas or sessions, nothing expired."""
        session, other_session = self._session(), self._session()
        short = await self._grant(lock_store, self._acquire(clock, session, (seat("A", 1, 1),)))
        live = await self._grant(
            lock_store, self._acquire(clock, session, (seat("A", 1, 2), seat("A", 1, 3)), ttls=3)
        )
        to_sell = await self._grant(
            lock_store, self._acquire(clock, session, (seat("A", 2, 1), seat("A", 2, 2)), ttls=3)
        )
        await self._run(
            lock_store,
            MarkSold(
                session_id=session,
                area_id=to_sell.area_id,
                hold_id=to_sell.hold_id,
                seat_ids=to_sell.seat_ids,
                fencing_token=to_sell.fencing_token,
            ),
        )
        other_area = await self._grant(
            lock_store, self._acquire(clock, session, (seat("B", 1, 1),), area_id="B", ttls=3)
        )
        elsewhere = self._acquire(clock, other_session, (seat("A", 1, 4),), ttls=3)
        sold_elsewhere = await self._grant(lock_store, elsewhere)
        await self._run(
            lock_store,
            MarkSold(
                session_id=other_session,
                area_id=sold_elsewhere.area_id,
                hold_id=sold_elsewhere.hold_id,
                seat_ids=sold_elsewhere.seat_ids,
                fencing_token=sold_elsewhere.fencing_token,
            ),
        )
        issued = [short, live, to_sell, other_area, sold_elsewhere]

        before = await lock_store.load(session, AreaId("A"))
        assert {h.hold_id for h in before.holds} == {short.hold_id, live.hold_id}
        assert self._hold_in(before, live.hold_id) == live
        assert dict(before.sold) == dict.fromkeys(to_sell.seat_ids, to_sell.order_id)

        await self.pass_time(clock, self.hold_ttl)
        after = await lock_store.load(session, AreaId("A"))
        assert [h.hold_id for h in after.holds] == [live.hold_id]
        assert dict(after.sold) == dict.fromkeys(to_sell.seat_ids, to_sell.order_id)
        assert after.last_fencing_token >= max(
            h.fencing_token for h in issued if h.session_id == session and h.area_id == "A"
        )
        area_b = await lock_store.load(session, AreaId("B"))
        assert [h.hold_id for h in area_b.holds] == [other_area.hold_id]
        assert dict(area_b.sold) == {}
        assert area_b.last_fencing_token >= other_area.fencing_token

    async def test_every_op_files_its_seats_under_the_area_it_names(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """The op's area, not the form of a seat id, says which partition a seat is in.

        A seat id is an opaque name to the store: here area ``A``'s seats are called
        ``B-…`` and area ``B``'s ``A-…``, so a store that read the area out of a seat id,
        or filed an op's seats under any area but the op's own, loads them in the wrong
        partition. Each area sells, extends, releases and refunds one hold.
        """
        session = self._session()
        later = self._expiry(clock, 4)
        kept: dict[AreaId, tuple[SeatHold, SeatHold]] = {}
        for area, named in ((AreaId("A"), "B"), (AreaId("B"), "A")):
            s = [seat(named, 7, n) for n in range(1, 6)]
            sold, extended, released, refunded = [
                await self._grant(
                    lock_store, self._acquire(clock, session, seats, area_id=area, ttls=3)
                )
                for seats in (s[0:2], s[2:3], s[3:4], s[4:5])
            ]
            results = await self._run(
                lock_store,
                MarkSold(
                    session_id=session,
                    area_id=area,
                    hold_id=sold.hold_id,
                    seat_ids=sold.seat_ids,
                    fencing_token=sold.fencing_token,
                ),
                ExtendHold(
                    session_id=session,
                    area_id=area,
                    hold_id=extended.hold_id,
                    seat_ids=extended.seat_ids,
                    expires_at=later,
                ),
                ReleaseHold(
                    session_id=session,
                    area_id=area,
                    hold_id=released.hold_id,
                    seat_ids=released.seat_ids,
                ),
                MarkSold(
                    session_id=session,
                    area_id=area,
                    hold_id=refunded.hold_id,
                    seat_ids=refunded.seat_ids,
                    fencing_token=refunded.fencing_token,
                ),
                ReleaseSold(session_id=session, area_id=area, seat_ids=refunded.seat_ids),
            )
            assert results == [
                Done(sold.seat_ids),
                Done(extended.seat_ids),
                Done(released.seat_ids),
                Done(refunded.seat_ids),
                Done(refunded.seat_ids),
            ]
            kept[area] = (sold, extended)

        for area, (sold, extended) in kept.items():
            snapshot = await lock_store.load(session, area)
            assert [h.hold_id for h in snapshot.holds] == [extended.hold_id], area
            assert self._hold_in(snapshot, extended.hold_id).expires_at == later
            assert dict(snapshot.sold) == dict.fromkeys(sold.seat_ids, sold.order_id), area

    async def test_load_of_an_untouched_partition_is_empty(self, lock_store: LockStore) -> None:
        """A partition nobody used has no holds and no sold seats."""
        snapshot = await lock_store.load(self._session(), AreaId("A"))
        assert snapshot.holds == ()
        assert dict(snapshot.sold) == {}

    # --- contention --------------------------------------------------------------------

    async def test_concurrent_acquires_of_one_seat_grant_exactly_one(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Many buyers at once, one seat: one hold granted, every other refused (#1)."""
        session = self._session()
        s = seat("A", 1, 1)
        # the race is about exclusion, not expiry: holds outlive however long it takes
        ops = [
            self._acquire(clock, session, (s,), ttls=RACE_TTLS)
            for _ in range(self.concurrent_buyers)
        ]
        answers = await asyncio.gather(*(lock_store.execute([op]) for op in ops))
        results = [result for answer in answers for result in answer]
        assert len(results) == len(ops)
        granted = [r for r in results if isinstance(r, Granted)]
        assert len(granted) == 1
        assert all(r == Refused((s,)) for r in results if not isinstance(r, Granted))
        snapshot = await lock_store.load(session, AreaId("A"))
        assert [h.hold_id for h in snapshot.holds] == [granted[0].hold.hold_id]

    async def test_concurrent_overlapping_acquires_never_share_a_seat(
        self, lock_store: LockStore, clock: Clock
    ) -> None:
        """Racing multi-seat holds: the granted ones are disjoint, and some are granted."""
        session = self._session()
        ring = [seat("A", 1, n) for n in range(1, 11)]
        ops = [
            self._acquire(
                clock,
                session,
                (ring[i % 10], ring[(i + 1) % 10], ring[(i + 3) % 10]),
                ttls=RACE_TTLS,
            )
            for i in range(200)
        ]
        answers = await asyncio.gather(*(lock_store.execute([op]) for op in ops))
        granted = [r.hold for (r,) in answers if isinstance(r, Granted)]
        assert granted
        taken = [s for hold in granted for s in hold.seat_ids]
        assert len(taken) == len(set(taken)), "a seat was granted to two holds"
        snapshot = await lock_store.load(session, AreaId("A"))
        assert {h.hold_id for h in snapshot.holds} == {h.hold_id for h in granted}
