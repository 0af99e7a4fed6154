"""Contracts of the repositories, each driven through a ``UnitOfWorkFactory``.

Every suite here needs one fixture, ``uow_factory``, that the adapter's subclass
defines: a ``UnitOfWorkFactory`` over a store the test may write to. Ids and e-mail
addresses are random, so a store shared with other tests is fine.

One module, over 500 lines: the repositories' suites share their fixtures and builders;
an adapter subclasses them all from here.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID, uuid4

import attrs
import pytest

from openticket.application.ports.errors import (
    ConcurrencyError,
    DuplicateError,
    EmailTaken,
    SeatAlreadyTicketed,
)
from openticket.application.ports.repositories import MAX_PAGE_SIZE, InvalidCursor, Page
from openticket.application.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from openticket.domain.catalog import (
    Event,
    EventStatus,
    QuotaExhausted,
    SessionStatus,
    UserLimitReached,
)
from openticket.domain.identity import Role, User, UserStatus
from openticket.domain.ordering import Order, OrderLimits, OrderStatus
from openticket.domain.payment import PaymentStatus
from openticket.domain.shared import (
    AreaId,
    CategoryId,
    EventId,
    OrderId,
    PaymentId,
    SessionId,
    TicketId,
    UserId,
    VenueId,
)
from openticket.domain.ticketing import Ticket, TicketStatus
from openticket.domain.venue import VenueStatus
from openticket.testing.contracts._builders import (
    T0,
    new_event,
    new_id,
    new_order,
    new_payment,
    new_price_category,
    new_session,
    new_ticket,
    new_user,
    new_venue,
    seat,
    seats,
    state_of,
    unique_email,
)
from openticket.testing.contracts._uow import (
    add_each,
    in_unit,
    let_others_run,
    read,
    refused_at_add_or_commit,
    unique_moment,
    wait_for_each_other,
    walk,
)

# --- users ---------------------------------------------------------------------------

_NEW_HASH = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA"


async def _user_by_email(uow_factory: UnitOfWorkFactory, email: str) -> User | None:
    return await read(uow_factory, lambda uow: uow.users.get_by_email(email))


class UserRepositoryContract:
    """What every ``UserRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_an_added_user_is_found_by_id(self, uow_factory: UnitOfWorkFactory) -> None:
        """A committed user reads back with every field it was stored with."""
        user = new_user(roles=(Role.BUYER, Role.ORGANIZER))
        await in_unit(uow_factory, lambda uow: uow.users.add(user))
        found = await read(uow_factory, lambda uow: uow.users.get(user.user_id))
        assert found is not None
        assert state_of(found) == state_of(user)

    async def test_an_unknown_user_is_none(self, uow_factory: UnitOfWorkFactory) -> None:
        """Neither an unknown id nor an unknown e-mail finds anyone."""
        await in_unit(uow_factory, lambda uow: uow.users.add(new_user()))
        assert await read(uow_factory, lambda uow: uow.users.get(UserId(uuid4()))) is None
        assert await read(uow_factory, lambda uow: uow.users.get_by_email(unique_email())) is None

    async def test_a_user_is_found_by_email_whatever_its_case_and_spacing(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """The e-mail is matched after normalising (trimmed, lower case)."""
        user = new_user(email=f"Ada.{uuid4().hex}@Example.COM")
        await in_unit(uow_factory, lambda uow: uow.users.add(user))
        for asked in (user.email, f"  {user.email.upper()} "):
            found = await _user_by_email(uow_factory, asked)
            assert found is not None, f"no user for {asked!r}"
            assert found.user_id == user.user_id

    async def test_save_stores_changes(self, uow_factory: UnitOfWorkFactory) -> None:
        """Roles, hash and status changed on a loaded user are there after commit."""
        user = new_user()
        await in_unit(uow_factory, lambda uow: uow.users.add(user))
        async with uow_factory() as uow:
            loaded = await uow.users.get(user.user_id)
            assert loaded is not None
            loaded.grant(Role.STAFF)
            loaded.change_password_hash(_NEW_HASH)
            loaded.disable()
            await uow.users.save(loaded)
            await uow.commit()
        found = await read(uow_factory, lambda uow: uow.users.get(user.user_id))
        assert found is not None
        assert found.roles == frozenset({Role.BUYER, Role.STAFF})
        assert found.password_hash == _NEW_HASH
        assert found.status is UserStatus.DISABLED

    async def test_a_second_user_with_the_same_email_raises_email_taken(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Another unit registering the address again (in any case) fails and stores nothing."""
        first = new_user()
        await in_unit(uow_factory, lambda uow: uow.users.add(first))
        second = new_user(email=first.email.upper())
        await refused_at_add_or_commit(uow_factory, EmailTaken, lambda uow: uow.users.add(second))
        assert await read(uow_factory, lambda uow: uow.users.get(second.user_id)) is None
        owner = await read(uow_factory, lambda uow: uow.users.get_by_email(first.email))
        assert owner is not None
        assert owner.user_id == first.user_id

    async def test_adding_an_existing_user_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Ids are unique: a second user under one id is refused."""
        user = new_user()
        await in_unit(uow_factory, lambda uow: uow.users.add(user))
        twin = new_user()
        twin.user_id = user.user_id
        await refused_at_add_or_commit(uow_factory, DuplicateError, lambda uow: uow.users.add(twin))
        assert await read(uow_factory, lambda uow: uow.users.get_by_email(twin.email)) is None


# --- venues --------------------------------------------------------------------------


class VenueRepositoryContract:
    """What every ``VenueRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_an_added_venue_reads_back_with_its_seat_map(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Name, address and every area, row and seat survive the round trip."""
        venue = new_venue()
        await in_unit(uow_factory, lambda uow: uow.venues.add(venue))
        found = await read(uow_factory, lambda uow: uow.venues.get(venue.venue_id))
        assert found is not None
        assert state_of(found) == state_of(venue)
        assert list(found.seat_map.seat_ids()) == list(venue.seat_map.seat_ids())
        assert found.capacity == venue.capacity

    async def test_an_unknown_venue_is_none(self, uow_factory: UnitOfWorkFactory) -> None:
        """An id nobody stored finds nothing."""
        await in_unit(uow_factory, lambda uow: uow.venues.add(new_venue()))
        assert await read(uow_factory, lambda uow: uow.venues.get(VenueId(uuid4()))) is None

    async def test_save_stores_changes(self, uow_factory: UnitOfWorkFactory) -> None:
        """A renamed, archived venue stays so."""
        venue = new_venue()
        await in_unit(uow_factory, lambda uow: uow.venues.add(venue))
        async with uow_factory() as uow:
            loaded = await uow.venues.get(venue.venue_id)
            assert loaded is not None
            loaded.name = "Old Concert Hall"
            loaded.status = VenueStatus.ARCHIVED
            await uow.venues.save(loaded)
            await uow.commit()
        found = await read(uow_factory, lambda uow: uow.venues.get(venue.venue_id))
        assert found is not None
        assert (found.name, found.status) == ("Old Concert Hall", VenueStatus.ARCHIVED)
        assert found.seat_map == venue.seat_map

    async def test_adding_an_existing_venue_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A second venue under one id is refused; the first stays."""
        venue = new_venue()
        await in_unit(uow_factory, lambda uow: uow.venues.add(venue))
        twin = new_venue(name="Impostor Hall")
        twin.venue_id = venue.venue_id
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.venues.add(twin)
        )
        found = await read(uow_factory, lambda uow: uow.venues.get(venue.venue_id))
        assert found is not None
        assert found.name == venue.name


# --- events --------------------------------------------------------------------------


async def _events_page(
    uow_factory: UnitOfWorkFactory,
    cursor: str | None,
    *,
    limit: int,
    organizer_id: UserId | None = None,
) -> Page[Event]:
    async with uow_factory() as uow:
        return await uow.events.list(limit=limit, cursor=cursor, organizer_id=organizer_id)


class EventRepositoryContract:
    """What every ``EventRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_an_added_event_reads_back(self, uow_factory: UnitOfWorkFactory) -> None:
        """Every field survives the round trip; an unknown id finds nothing."""
        event = new_event()
        await in_unit(uow_factory, lambda uow: uow.events.add(event))
        found = await read(uow_factory, lambda uow: uow.events.get(event.event_id))
        assert found is not None
        assert state_of(found) == state_of(event)
        assert await read(uow_factory, lambda uow: uow.events.get(EventId(uuid4()))) is None

    async def test_save_stores_changes(self, uow_factory: UnitOfWorkFactory) -> None:
        """A cancelled event stays cancelled."""
        event = new_event()
        await in_unit(uow_factory, lambda uow: uow.events.add(event))
        async with uow_factory() as uow:
            loaded = await uow.events.get(event.event_id)
            assert loaded is not None
            loaded.cancel()
            await uow.events.save(loaded)
            await uow.commit()
        found = await read(uow_factory, lambda uow: uow.events.get(event.event_id))
        assert found is not None
        assert found.status is EventStatus.CANCELLED

    async def test_paging_visits_every_event_once_oldest_first(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Limit and cursor walk the list exactly once, even with equal times and late additions."""
        organizer = UserId(uuid4())
        offsets = (0, 1, 1, 1, 2, 3, 3, 4, 5, 6)
        events = [
            new_event(organizer_id=organizer, created_at=T0 + timedelta(minutes=m)) for m in offsets
        ]
        await add_each(uow_factory, lambda uow: uow.events, events)
        late = new_event(organizer_id=organizer, created_at=T0 + timedelta(minutes=10))

        async def add_late() -> None:
            await in_unit(uow_factory, lambda uow: uow.events.add(late))

        seen = await walk(
            lambda f, c: _events_page(f, c, limit=3, organizer_id=organizer),
            uow_factory,
            limit=3,
            between_pages=add_late,
        )
        ids = [e.event_id for e in seen]
        assert len(ids) == len(set(ids)), "an event was listed twice"
        assert set(ids) == {e.event_id for e in [*events, late]}
        times = [e.created_at for e in seen]
        assert times == sorted(times), "not oldest first"

    async def test_the_unfiltered_list_holds_every_event_once_oldest_first(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Without a filter, each event of every organizer appears once, oldest first."""
        events = [new_event(created_at=T0 + timedelta(seconds=n)) for n in range(5)]
        await add_each(uow_factory, lambda uow: uow.events, events)
        seen = await walk(
            lambda f, c: _events_page(f, c, limit=MAX_PAGE_SIZE), uow_factory, limit=MAX_PAGE_SIZE
        )
        ids = [e.event_id for e in seen]
        assert len(ids) == len(set(ids)), "an event was listed twice"
        mine = [i for i in ids if i in {e.event_id for e in events}]
        assert mine == [e.event_id for e in events]

    async def test_the_organizer_filter_lists_only_that_organizers_events(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Another organizer's events never show up in a filtered list."""
        mine, theirs = UserId(uuid4()), UserId(uuid4())
        interleaved = [
            new_event(
                organizer_id=mine if n % 2 == 0 else theirs, created_at=T0 + timedelta(minutes=n)
            )
            for n in range(5)
        ]
        own = interleaved[::2]
        await add_each(uow_factory, lambda uow: uow.events, interleaved)
        page = await _events_page(uow_factory, None, limit=MAX_PAGE_SIZE, organizer_id=mine)
        assert [e.event_id for e in page.items] == [e.event_id for e in own]
        assert page.next_cursor is None
        nobody = await _events_page(uow_factory, None, limit=10, organizer_id=UserId(uuid4()))
        assert nobody == Page(())

    async def test_a_cursor_it_did_not_hand_out_is_invalid(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A forged cursor raises ``InvalidCursor`` instead of listing something."""
        await in_unit(uow_factory, lambda uow: uow.events.add(new_event()))
        with pytest.raises(InvalidCursor):
            await _events_page(uow_factory, "not-a-cursor", limit=10)

    async def test_adding_an_existing_event_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A second event under one id is refused; the first stays."""
        event = new_event()
        await in_unit(uow_factory, lambda uow: uow.events.add(event))
        twin = new_event(name="Impostor")
        twin.event_id = event.event_id
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.events.add(twin)
        )
        found = await read(uow_factory, lambda uow: uow.events.get(event.event_id))
        assert found is not None
        assert found.name == event.name


# --- sessions ------------------------------------------------------------------------


class SessionRepositoryContract:
    """What every ``SessionRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_an_added_session_reads_back(self, uow_factory: UnitOfWorkFactory) -> None:
        """Every field survives the round trip; an unknown id finds nothing."""
        session = new_session()
        await in_unit(uow_factory, lambda uow: uow.sessions.add(session))
        found = await read(uow_factory, lambda uow: uow.sessions.get(session.session_id))
        assert found is not None
        assert state_of(found) == state_of(session)
        assert await read(uow_factory, lambda uow: uow.sessions.get(SessionId(uuid4()))) is None

    async def test_the_per_user_cap_reads_back_set_or_not(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A session's own cap, and a session without one (it takes the per-order cap)."""
        capped, uncapped = new_session(max_seats_per_user=40), new_session()
        await add_each(uow_factory, lambda uow: uow.sessions, [capped, uncapped])
        found = await read(uow_factory, lambda uow: uow.sessions.get(capped.session_id))
        assert found is not None
        assert (found.max_seats_per_user, found.seat_cap_per_user) == (40, 40)
        found = await read(uow_factory, lambda uow: uow.sessions.get(uncapped.session_id))
        assert found is not None
        assert found.max_seats_per_user is None
        assert found.seat_cap_per_user == found.max_seats_per_order == 6

    async def test_a_required_challenge_reads_back_and_survives_a_save(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Queued sessions with and without a challenge, each as stored, also once saved."""
        challenged = new_session(queue_enabled=True, challenge_required=True)
        queued = new_session(queue_enabled=True)
        await add_each(uow_factory, lambda uow: uow.sessions, [challenged, queued])
        found = await read(uow_factory, lambda uow: uow.sessions.get(challenged.session_id))
        assert found is not None
        assert (found.queue_enabled, found.challenge_required) == (True, True)
        found = await read(uow_factory, lambda uow: uow.sessions.get(queued.session_id))
        assert found is not None
        assert (found.queue_enabled, found.challenge_required) == (True, False)
        async with uow_factory() as uow:
            loaded = await uow.sessions.get(challenged.session_id)
            assert loaded is not None
            loaded.cancel()
            await uow.sessions.save(loaded)
            await uow.commit()
        found = await read(uow_factory, lambda uow: uow.sessions.get(challenged.session_id))
        assert found is not None
        assert (found.status, found.challenge_required) == (SessionStatus.CANCELLED, True)

    async def test_save_stores_changes(self, uow_factory: UnitOfWorkFactory) -> None:
        """A cancelled session stays cancelled."""
        session = new_session()
        await in_unit(uow_factory, lambda uow: uow.sessions.add(session))
        async with uow_factory() as uow:
            loaded = await uow.sessions.get(session.session_id)
            assert loaded is not None
            loaded.cancel()
            await uow.sessions.save(loaded)
            await uow.commit()
        found = await read(uow_factory, lambda uow: uow.sessions.get(session.session_id))
        assert found is not None
        assert found.status is SessionStatus.CANCELLED

    async def test_list_for_event_gives_its_sessions_earliest_start_first(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Sorted by start time whatever the order they were added in; no other event's."""
        event_id = EventId(uuid4())
        starts = (T0 + timedelta(days=d) for d in (40, 31, 35))
        sessions = [new_session(event_id=event_id, start_time=s) for s in starts]
        others = [new_session(), new_session()]
        await add_each(uow_factory, lambda uow: uow.sessions, [*sessions, *others])
        listed = await read(uow_factory, lambda uow: uow.sessions.list_for_event(event_id))
        expected = sorted(sessions, key=lambda s: s.start_time)
        assert [s.session_id for s in listed] == [s.session_id for s in expected]
        nothing = await read(uow_factory, lambda uow: uow.sessions.list_for_event(EventId(uuid4())))
        assert list(nothing) == []

    async def test_adding_an_existing_session_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A second session under one id is refused; the first stays."""
        session = new_session()
        await in_unit(uow_factory, lambda uow: uow.sessions.add(session))
        twin = new_session()
        twin.session_id = session.session_id
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.sessions.add(twin)
        )
        found = await read(uow_factory, lambda uow: uow.sessions.get(session.session_id))
        assert found is not None
        assert found.event_id == session.event_id


# --- price categories ----------------------------------------------------------------


class PriceCategoryRepositoryContract:
    """What every ``PriceCategoryRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_an_added_category_reads_back(self, uow_factory: UnitOfWorkFactory) -> None:
        """Name, areas, price and quota survive the round trip; an unknown id finds nothing."""
        category = new_price_category(
            event_id=EventId(uuid4()), areas=("A", "B"), amount="49.90", quota=120
        )
        await in_unit(uow_factory, lambda uow: uow.price_categories.add(category))
        found = await read(uow_factory, lambda uow: uow.price_categories.get(category.category_id))
        assert found == category
        unknown = await read(uow_factory, lambda uow: uow.price_categories.get(CategoryId(uuid4())))
        assert unknown is None

    async def test_list_for_event_gives_its_categories_in_the_order_added(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """The order they were added in, not by name or id; no other event's."""
        event_id = EventId(uuid4())
        categories = [
            new_price_category(event_id=event_id, areas=(area,), name=name, amount=amount)
            for area, name, amount in (
                ("B", "Stalls", "80"),
                ("A", "Balcony", "20"),
                ("C", "Box", "150"),
            )
        ]
        other = new_price_category(event_id=EventId(uuid4()))
        await add_each(
            uow_factory, lambda uow: uow.price_categories, [categories[0], other, *categories[1:]]
        )
        listed = await read(uow_factory, lambda uow: uow.price_categories.list_for_event(event_id))
        assert list(listed) == categories

    async def test_adding_an_existing_category_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Categories are immutable: adding one again under its id is refused."""
        category = new_price_category(event_id=EventId(uuid4()))
        await in_unit(uow_factory, lambda uow: uow.price_categories.add(category))
        twin = attrs.evolve(
            new_price_category(event_id=category.event_id, amount="1.00"),
            category_id=category.category_id,
        )
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.price_categories.add(twin)
        )
        found = await read(uow_factory, lambda uow: uow.price_categories.get(category.category_id))
        assert found == category


# --- orders --------------------------------------------------------------------------


async def _orders_page(
    uow_factory: UnitOfWorkFactory, cursor: str | None, *, user_id: UserId, limit: int
) -> Page[Order]:
    async with uow_factory() as uow:
        return await uow.orders.list_for_user(user_id, limit=limit, cursor=cursor)


class OrderRepositoryContract:
    """What every ``OrderRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_an_added_order_reads_back(self, uow_factory: UnitOfWorkFactory) -> None:
        """Items, prices, total, times and token survive the round trip."""
        order = new_order(seat_ids=seats("A", 3), fencing_token=42)
        await in_unit(uow_factory, lambda uow: uow.orders.add(order))
        found = await read(uow_factory, lambda uow: uow.orders.get(order.order_id))
        assert found is not None
        assert state_of(found) == state_of(order)
        assert await read(uow_factory, lambda uow: uow.orders.get(OrderId(uuid4()))) is None

    async def test_save_stores_changes(self, uow_factory: UnitOfWorkFactory) -> None:
        """A status change with its payment id and times is there after commit."""
        order = new_order()
        await in_unit(uow_factory, lambda uow: uow.orders.add(order))
        payment_id = PaymentId(uuid4())
        async with uow_factory() as uow:
            loaded = await uow.orders.get(order.order_id)
            assert loaded is not None
            loaded.start_payment(payment_id, now=T0 + timedelta(seconds=10), ids=new_id)
            loaded.complete(payment_id, now=T0 + timedelta(seconds=20), ids=new_id)
            await uow.orders.save(loaded)
            await uow.commit()
        found = await read(uow_factory, lambda uow: uow.orders.get(order.order_id))
        assert found is not None
        assert found.status is OrderStatus.COMPLETED
        assert found.payment_id == payment_id
        assert found.completed_at == T0 + timedelta(seconds=20)

    async def test_list_for_user_pages_through_their_orders_oldest_first(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Every order of the buyer exactly once, in creation order; nobody else's."""
        buyer = UserId(uuid4())
        orders = [new_order(user_id=buyer, now=T0 + timedelta(seconds=n)) for n in range(7)]
        strangers = [new_order(now=T0 + timedelta(seconds=n)) for n in range(3)]
        await add_each(uow_factory, lambda uow: uow.orders, [*orders, *strangers])
        seen = await walk(
            lambda f, c: _orders_page(f, c, user_id=buyer, limit=2), uow_factory, limit=2
        )
        assert [o.order_id for o in seen] == [o.order_id for o in orders]
        assert await _orders_page(uow_factory, None, user_id=UserId(uuid4()), limit=5) == Page(())

    async def test_placed_since_counts_the_sessions_orders_placed_after_a_moment(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Orders of the session placed after ``since``, whatever their status; no others."""
        session = SessionId(uuid4())
        start = unique_moment()
        placed = [new_order(session_id=session, now=start + timedelta(seconds=n)) for n in range(4)]
        placed[3].cancel(now=start + timedelta(seconds=5), ids=new_id)
        elsewhere = new_order(now=start + timedelta(seconds=3))
        await add_each(uow_factory, lambda uow: uow.orders, [*placed, elsewhere])

        async def since(seconds: int) -> int:
            moment = start + timedelta(seconds=seconds)
            return await read(uow_factory, lambda uow: uow.orders.placed_since(session, moment))

        assert await since(-1) == 4
        assert await since(1) == 2  # placed at 2 s and 3 s: after, not at, the moment
        assert await since(3) == 0
        assert (
            await read(uow_factory, lambda uow: uow.orders.placed_since(SessionId(uuid4()), start))
            == 0
        )

    async def test_list_for_user_refuses_a_forged_cursor(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A cursor the repository did not hand out raises ``InvalidCursor``."""
        order = new_order()
        await in_unit(uow_factory, lambda uow: uow.orders.add(order))
        with pytest.raises(InvalidCursor):
            await _orders_page(uow_factory, "forged", user_id=order.user_id, limit=5)

    async def test_list_due_returns_only_open_orders_due_at_now(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Created and payment-pending orders at or past expiry; never closed or future ones."""
        start = unique_moment()
        ttl = timedelta(minutes=2)
        now = start + timedelta(minutes=5)

        due_created = new_order(now=start, ttl=ttl)
        due_pending = new_order(now=start, ttl=ttl)
        due_pending.start_payment(PaymentId(uuid4()), now=start, ids=new_id)
        due_exactly_now = new_order(now=now - ttl, ttl=ttl)
        not_yet_due = new_order(now=now - ttl + timedelta(seconds=1), ttl=ttl)
        cancelled = new_order(now=start, ttl=ttl)
        cancelled.cancel(now=start, ids=new_id)
        expired = new_order(now=start, ttl=ttl)
        expired.expire(now=start + ttl, ids=new_id)
        completed = new_order(now=start, ttl=ttl)
        completed.start_payment(PaymentId(uuid4()), now=start, ids=new_id)
        assert completed.payment_id is not None
        completed.complete(completed.payment_id, now=start, ids=new_id)
        mine = [due_created, due_pending, due_exactly_now, not_yet_due]
        mine += [cancelled, expired, completed]
        await add_each(uow_factory, lambda uow: uow.orders, mine)

        due = await read(uow_factory, lambda uow: uow.orders.list_due(now, limit=MAX_PAGE_SIZE))
        assert all(o.is_due(now) for o in due), [o for o in due if not o.is_due(now)]
        ids = [o.order_id for o in due]
        assert len(ids) == len(set(ids))
        assert {i for i in ids if i in {o.order_id for o in mine}} == {
            due_created.order_id,
            due_pending.order_id,
            due_exactly_now.order_id,
        }
        assert len(await read(uow_factory, lambda uow: uow.orders.list_due(now, limit=1))) == 1

    async def test_adding_an_existing_order_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A second order under one id is refused; the first stays."""
        order = new_order()
        await in_unit(uow_factory, lambda uow: uow.orders.add(order))
        twin = new_order()
        twin.order_id = order.order_id
        twin.collect_events()
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.orders.add(twin)
        )
        found = await read(uow_factory, lambda uow: uow.orders.get(order.order_id))
        assert found is not None
        assert found.user_id == order.user_id


# --- caps and quotas -----------------------------------------------------------------


async def _add_limited(uow_factory: UnitOfWorkFactory, order: Order, limits: OrderLimits) -> None:
    async with uow_factory() as uow:
        await uow.orders.add(order, limits)
        await uow.commit()


async def _stored(uow_factory: UnitOfWorkFactory, orders: list[Order]) -> list[bool]:
    return [await _order(uow_factory, o.order_id) is not None for o in orders]


def _ended(order: Order, status: OrderStatus) -> Order:
    """``order`` moved on to ``status`` (as stored when its seats no longer count, or do)."""
    later = T0 + timedelta(seconds=1)
    if status is OrderStatus.CANCELLED:
        order.cancel(now=later, ids=new_id)
    elif status is OrderStatus.EXPIRED:
        order.expire(now=order.expires_at, ids=new_id)
    else:
        payment_id = PaymentId(uuid4())
        order.start_payment(payment_id, now=later, ids=new_id)
        if status is OrderStatus.FAILED:
            order.fail("declined", now=later, ids=new_id)
        elif status in {OrderStatus.COMPLETED, OrderStatus.REFUNDED}:
            order.complete(payment_id, now=later, ids=new_id)
            if status is OrderStatus.REFUNDED:
                order.refund(now=later, ids=new_id)
    order.collect_events()
    return order


class OrderLimitsContract:
    """What ``OrderRepository.add`` with ``OrderLimits`` must do, racing units included.

    Subclasses define ``uow_factory``; units of work made by it may run at once (on
    PostgreSQL: on different connections, as different processes would).
    """

    async def test_a_buyer_past_the_cap_is_refused_and_the_order_not_stored(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """2 + 2 seats in two areas pass a cap of 4; one seat more is refused, nothing stored.

        Other buyers' orders, and the buyer's orders of another session, do not count.
        """
        session_id, buyer = SessionId(uuid4()), UserId(uuid4())
        limits = OrderLimits(seats_per_user=4)
        await add_each(
            uow_factory,
            lambda uow: uow.orders,
            [
                new_order(session_id=session_id, seat_ids=seats("C", 4)),
                new_order(user_id=buyer, seat_ids=seats("C", 4)),
            ],
        )
        first = new_order(user_id=buyer, session_id=session_id, seat_ids=seats("A", 2))
        second = new_order(user_id=buyer, session_id=session_id, seat_ids=seats("B", 2))
        await _add_limited(uow_factory, first, limits)
        await _add_limited(uow_factory, second, limits)
        third = new_order(user_id=buyer, session_id=session_id, seat_ids=(seat("B", 2, 1),))
        third.collect_events()
        refused = await refused_at_add_or_commit(
            uow_factory, UserLimitReached, lambda uow: uow.orders.add(third, limits)
        )
        assert "4 seats per buyer" in str(refused)
        assert "may take 0 more" in str(refused)
        assert await _stored(uow_factory, [first, second, third]) == [True, True, False]

    async def test_seats_taken_counts_the_buyers_live_orders_of_the_session(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """2 + 3 seats of the buyer in the session; other buyers and sessions not counted."""
        session_id, buyer = SessionId(uuid4()), UserId(uuid4())
        await add_each(
            uow_factory,
            lambda uow: uow.orders,
            [
                new_order(user_id=buyer, session_id=session_id, seat_ids=seats("A", 2)),
                new_order(user_id=buyer, session_id=session_id, seat_ids=seats("B", 3)),
                new_order(session_id=session_id, seat_ids=seats("C", 4)),
                new_order(user_id=buyer, seat_ids=seats("C", 4)),
            ],
        )
        async with uow_factory() as uow:
            assert await uow.orders.seats_taken(session_id, buyer) == 5
            assert await uow.orders.seats_taken(session_id, UserId(uuid4())) == 0

    async def test_the_refusal_says_how_many_the_buyer_may_still_take(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """With 3 of 4 taken, an order of 2 is refused saying 1 more may be taken."""
        session_id, buyer = SessionId(uuid4()), UserId(uuid4())
        limits = OrderLimits(seats_per_user=4)
        taken = new_order(user_id=buyer, session_id=session_id, seat_ids=seats("A", 3))
        await _add_limited(uow_factory, taken, limits)
        two = new_order(user_id=buyer, session_id=session_id, seat_ids=seats("A", 2, row=2))
        two.collect_events()
        refused = await refused_at_add_or_commit(
            uow_factory, UserLimitReached, lambda uow: uow.orders.add(two, limits)
        )
        assert "you have 3" in str(refused)
        assert "may take 1 more" in str(refused)
        one = new_order(user_id=buyer, session_id=session_id, seat_ids=(seat("A", 2, 1),))
        await _add_limited(uow_factory, one, limits)
        assert await _stored(uow_factory, [two, one]) == [False, True]

    @pytest.mark.parametrize(
        ("status", "counts"),
        [
            (OrderStatus.PAYMENT_PENDING, True),
            (OrderStatus.COMPLETED, True),
            (OrderStatus.CANCELLED, False),
            (OrderStatus.EXPIRED, False),
            (OrderStatus.FAILED, False),
            (OrderStatus.REFUNDED, False),
        ],
    )
    async def test_only_live_and_completed_orders_count(
        self, uow_factory: UnitOfWorkFactory, status: OrderStatus, counts: bool
    ) -> None:
        """The seats of an order that ended without a sale (or was refunded) free the cap."""
        session_id, buyer = SessionId(uuid4()), UserId(uuid4())
        limits = OrderLimits(seats_per_user=3)
        earlier = new_order(user_id=buyer, session_id=session_id, seat_ids=seats("A", 3))
        await _add_limited(uow_factory, earlier, limits)
        async with uow_factory() as uow:
            loaded = await uow.orders.get(earlier.order_id)
            assert loaded is not None
            await uow.orders.save(_ended(loaded, status))
            await uow.commit()
        again = new_order(user_id=buyer, session_id=session_id, seat_ids=seats("B", 3))
        again.collect_events()
        if counts:
            await refused_at_add_or_commit(
                uow_factory, UserLimitReached, lambda uow: uow.orders.add(again, limits)
            )
        else:
            await _add_limited(uow_factory, again, limits)
        assert await _stored(uow_factory, [again]) == [not counts]

    async def test_a_quota_counts_every_buyers_seats_in_its_areas(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A quota of 3 over areas A and B: 2 in A and 1 in B sold, the next is refused.

        Seats of other areas, and of the same areas in another session, do not count.
        """
        session_id = SessionId(uuid4())
        limits = OrderLimits(
            seats_per_user=10, quota=3, quota_areas=frozenset({AreaId("A"), AreaId("B")})
        )
        unlimited = OrderLimits(seats_per_user=10)
        await add_each(
            uow_factory,
            lambda uow: uow.orders,
            [
                new_order(session_id=session_id, seat_ids=seats("C", 5)),
                new_order(seat_ids=seats("A", 5)),
            ],
        )
        orders = [
            new_order(session_id=session_id, seat_ids=seats("A", 2)),
            new_order(session_id=session_id, seat_ids=seats("B", 1)),
        ]
        for order in orders:
            await _add_limited(uow_factory, order, limits)
        late = new_order(session_id=session_id, seat_ids=(seat("A", 2, 1),))
        late.collect_events()
        refused = await refused_at_add_or_commit(
            uow_factory, QuotaExhausted, lambda uow: uow.orders.add(late, limits)
        )
        assert "0 of its 3" in str(refused)
        elsewhere = new_order(session_id=session_id, seat_ids=(seat("C", 2, 1),))
        await _add_limited(uow_factory, elsewhere, unlimited)
        assert await _stored(uow_factory, [*orders, late, elsewhere]) == [True, True, False, True]

    async def test_racing_orders_of_one_buyer_never_pass_the_cap(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Six units add 2-seat orders of one buyer in different areas at once: cap 4, 2 pass."""
        session_id, buyer = SessionId(uuid4()), UserId(uuid4())
        limits = OrderLimits(seats_per_user=4)
        orders = [
            new_order(user_id=buyer, session_id=session_id, seat_ids=seats(area, 2))
            for area in "ABCDEF"
        ]
        outcomes = await _race(uow_factory, orders, limits)
        assert sum(o is None for o in outcomes) == 2, outcomes
        assert all(isinstance(o, UserLimitReached) for o in outcomes if o is not None), outcomes
        assert sum(await _stored(uow_factory, orders)) == 2

    async def test_racing_buyers_never_oversell_a_quota(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Eight buyers add 1-seat orders in two areas of one quota of 3 at once: 3 pass."""
        session_id = SessionId(uuid4())
        limits = OrderLimits(
            seats_per_user=4, quota=3, quota_areas=frozenset({AreaId("A"), AreaId("B")})
        )
        orders = [
            new_order(session_id=session_id, seat_ids=(seat("AB"[n % 2], 1, n + 1),))
            for n in range(8)
        ]
        outcomes = await _race(uow_factory, orders, limits)
        assert sum(o is None for o in outcomes) == 3, outcomes
        assert all(isinstance(o, QuotaExhausted) for o in outcomes if o is not None), outcomes
        assert sum(await _stored(uow_factory, orders)) == 3


async def _race(
    uow_factory: UnitOfWorkFactory, orders: list[Order], limits: OrderLimits
) -> list[BaseException | None]:
    """Add each order in its own unit, all at once; what each unit raised (None: stored)."""
    barrier = asyncio.Barrier(len(orders))

    async def place(order: Order) -> None:
        async with uow_factory() as uow:
            await wait_for_each_other(barrier)
            await uow.orders.add(order, limits)
            await let_others_run()
            await uow.commit()

    return await asyncio.gather(*(place(o) for o in orders), return_exceptions=True)


# --- payments ------------------------------------------------------------------------


class PaymentRepositoryContract:
    """What every ``PaymentRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_an_added_payment_reads_back(self, uow_factory: UnitOfWorkFactory) -> None:
        """Every field survives the round trip; an unknown id finds nothing."""
        payment = new_payment(new_order())
        await in_unit(uow_factory, lambda uow: uow.payments.add(payment))
        found = await read(uow_factory, lambda uow: uow.payments.get(payment.payment_id))
        assert found is not None
        assert state_of(found) == state_of(payment)
        assert await read(uow_factory, lambda uow: uow.payments.get(PaymentId(uuid4()))) is None

    async def test_save_stores_changes(self, uow_factory: UnitOfWorkFactory) -> None:
        """Status, transaction id and times of a settled payment are there after commit."""
        payment = new_payment(new_order())
        await in_unit(uow_factory, lambda uow: uow.payments.add(payment))
        async with uow_factory() as uow:
            loaded = await uow.payments.get(payment.payment_id)
            assert loaded is not None
            loaded.mark_pending("tx-1")
            loaded.succeed(now=T0 + timedelta(seconds=5), ids=new_id)
            await uow.payments.save(loaded)
            await uow.commit()
        found = await read(uow_factory, lambda uow: uow.payments.get(payment.payment_id))
        assert found is not None
        assert found.status is PaymentStatus.SUCCEEDED
        assert found.provider_transaction_id == "tx-1"
        assert found.processed_at == T0 + timedelta(seconds=5)

    async def test_a_payment_is_found_by_its_idempotency_key(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """The key a retried call carries leads back to its payment, and only to it."""
        payment, other = new_payment(new_order()), new_payment(new_order())
        await add_each(uow_factory, lambda uow: uow.payments, [payment, other])
        key = payment.idempotency_key
        found = await read(uow_factory, lambda uow: uow.payments.get_by_idempotency_key(key))
        assert found is not None
        assert found.payment_id == payment.payment_id
        unknown = await read(
            uow_factory, lambda uow: uow.payments.get_by_idempotency_key(f"pay-{uuid4().hex}")
        )
        assert unknown is None

    async def test_a_payment_is_found_by_its_providers_transaction_id(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Once saved with a transaction id, that provider's id finds it; another's does not."""
        payment = new_payment(new_order(), provider="stripe")
        await in_unit(uow_factory, lambda uow: uow.payments.add(payment))
        tx = f"pi_{uuid4().hex}"
        assert (
            await read(
                uow_factory, lambda uow: uow.payments.get_by_provider_transaction("stripe", tx)
            )
            is None
        )

        async def mark_pending(uow: UnitOfWork) -> None:
            loaded = await uow.payments.get(payment.payment_id)
            assert loaded is not None
            loaded.mark_pending(tx)
            await uow.payments.save(loaded)

        await in_unit(uow_factory, mark_pending)
        found = await read(
            uow_factory, lambda uow: uow.payments.get_by_provider_transaction("stripe", tx)
        )
        assert found is not None
        assert found.payment_id == payment.payment_id
        assert (
            await read(
                uow_factory, lambda uow: uow.payments.get_by_provider_transaction("linepay", tx)
            )
            is None
        )

    async def test_a_reused_idempotency_key_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Two payments can never share a key, so a retry can never charge twice."""
        order = new_order()
        first = new_payment(order)
        await in_unit(uow_factory, lambda uow: uow.payments.add(first))
        second = new_payment(order, idempotency_key=first.idempotency_key)
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.payments.add(second)
        )
        assert await read(uow_factory, lambda uow: uow.payments.get(second.payment_id)) is None

    async def test_list_for_order_gives_every_attempt_oldest_first(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """All attempts of an order in creation order; no other order's."""
        order = new_order()
        attempts = [new_payment(order, now=T0 + timedelta(seconds=n)) for n in range(3)]
        await add_each(uow_factory, lambda uow: uow.payments, [*attempts, new_payment(new_order())])
        listed = await read(uow_factory, lambda uow: uow.payments.list_for_order(order.order_id))
        assert [p.payment_id for p in listed] == [p.payment_id for p in attempts]
        nothing = await read(uow_factory, lambda uow: uow.payments.list_for_order(OrderId(uuid4())))
        assert list(nothing) == []

    async def test_list_unsettled_gives_initiated_and_pending_payments_oldest_first(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Payments still waiting on their provider, for reconciliation; settled ones drop out."""
        made = [new_payment(new_order(), now=T0 + timedelta(seconds=n)) for n in range(4)]
        await add_each(uow_factory, lambda uow: uow.payments, made)
        async with uow_factory() as uow:
            loaded = [await uow.payments.get(p.payment_id) for p in made[1:]]
            pending, settled, failed = (p for p in loaded if p is not None)
            pending.mark_pending("tx-pending")
            settled.mark_pending("tx-settled")
            settled.succeed(now=T0, ids=new_id)
            failed.fail("card_declined", now=T0, ids=new_id)
            for payment in (pending, settled, failed):
                await uow.payments.save(payment)
            await uow.commit()
        listed = await read(uow_factory, lambda uow: uow.payments.list_unsettled())
        assert [p.payment_id for p in listed] == [made[0].payment_id, made[1].payment_id]
        first = await read(uow_factory, lambda uow: uow.payments.list_unsettled(limit=1))
        assert [p.payment_id for p in first] == [made[0].payment_id]

    async def test_adding_an_existing_payment_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A second payment under one id is refused; the first stays."""
        payment = new_payment(new_order())
        await in_unit(uow_factory, lambda uow: uow.payments.add(payment))
        twin = new_payment(new_order())
        twin.payment_id = payment.payment_id
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.payments.add(twin)
        )
        found = await read(uow_factory, lambda uow: uow.payments.get(payment.payment_id))
        assert found is not None
        assert found.idempotency_key == payment.idempotency_key


# --- tickets -------------------------------------------------------------------------


async def _tickets_page(
    uow_factory: UnitOfWorkFactory, cursor: str | None, *, user_id: UserId, limit: int
) -> Page[Ticket]:
    async with uow_factory() as uow:
        return await uow.tickets.list_for_user(user_id, limit=limit, cursor=cursor)


async def _order(uow_factory: UnitOfWorkFactory, order_id: OrderId) -> Order | None:
    return await read(uow_factory, lambda uow: uow.orders.get(order_id))


async def _ticket(uow_factory: UnitOfWorkFactory, ticket_id: TicketId) -> Ticket | None:
    return await read(uow_factory, lambda uow: uow.tickets.get(ticket_id))


async def _void(uow_factory: UnitOfWorkFactory, ticket_id: TicketId) -> None:
    async def void(uow: UnitOfWork) -> None:
        loaded = await uow.tickets.get(ticket_id)
        assert loaded is not None
        loaded.void(now=T0 + timedelta(hours=1), ids=new_id)
        await uow.tickets.save(loaded)

    await in_unit(uow_factory, void)


class TicketRepositoryContract:
    """What every ``TicketRepository`` must do: above all, one live ticket per seat.

    Subclasses define ``uow_factory``.
    """

    async def test_an_added_ticket_reads_back(self, uow_factory: UnitOfWorkFactory) -> None:
        """Every field survives the round trip; an unknown id finds nothing."""
        ticket = new_ticket(session_id=SessionId(uuid4()), seat_id=seat("A", 1, 1))
        await in_unit(uow_factory, lambda uow: uow.tickets.add(ticket))
        found = await read(uow_factory, lambda uow: uow.tickets.get(ticket.ticket_id))
        assert found is not None
        assert state_of(found) == state_of(ticket)
        assert await read(uow_factory, lambda uow: uow.tickets.get(TicketId(uuid4()))) is None

    async def test_save_stores_a_check_in(self, uow_factory: UnitOfWorkFactory) -> None:
        """A used ticket stays used, with its time."""
        ticket = new_ticket(session_id=SessionId(uuid4()), seat_id=seat("A", 1, 1))
        await in_unit(uow_factory, lambda uow: uow.tickets.add(ticket))

        async def check_in(uow: UnitOfWork) -> None:
            loaded = await uow.tickets.get(ticket.ticket_id)
            assert loaded is not None
            loaded.check_in(now=T0 + timedelta(days=30), ids=new_id)
            await uow.tickets.save(loaded)

        await in_unit(uow_factory, check_in)
        found = await read(uow_factory, lambda uow: uow.tickets.get(ticket.ticket_id))
        assert found is not None
        assert found.status is TicketStatus.USED
        assert found.used_at == T0 + timedelta(days=30)

    async def test_a_ticket_is_found_by_its_qr_code(self, uow_factory: UnitOfWorkFactory) -> None:
        """The gate finds the ticket a QR code shows; an unknown code finds nothing."""
        session_id = SessionId(uuid4())
        ticket = new_ticket(session_id=session_id, seat_id=seat("A", 1, 1))
        other = new_ticket(session_id=session_id, seat_id=seat("A", 1, 2))
        await add_each(uow_factory, lambda uow: uow.tickets, [ticket, other])
        found = await read(uow_factory, lambda uow: uow.tickets.get_by_qr_code(ticket.qr_code))
        assert found is not None
        assert found.ticket_id == ticket.ticket_id
        unknown = f"qr{uuid4().hex}"
        assert await read(uow_factory, lambda uow: uow.tickets.get_by_qr_code(unknown)) is None

    async def test_a_second_live_ticket_for_a_seat_raises_seat_already_ticketed(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """The final fence against a double sale, for an issued and for a used ticket."""
        session_id = SessionId(uuid4())
        s = seat("A", 1, 1)
        first = new_ticket(session_id=session_id, seat_id=s)
        await in_unit(uow_factory, lambda uow: uow.tickets.add(first))
        second = new_ticket(session_id=session_id, seat_id=s)
        error = await refused_at_add_or_commit(
            uow_factory, SeatAlreadyTicketed, lambda uow: uow.tickets.add(second)
        )
        assert isinstance(error, SeatAlreadyTicketed)
        assert error.seat_id == s
        assert error.session_id == session_id

        async def check_in(uow: UnitOfWork) -> None:
            loaded = await uow.tickets.get(first.ticket_id)
            assert loaded is not None
            loaded.check_in(now=T0, ids=new_id)
            await uow.tickets.save(loaded)

        await in_unit(uow_factory, check_in)
        third = new_ticket(session_id=session_id, seat_id=s)
        await refused_at_add_or_commit(
            uow_factory, SeatAlreadyTicketed, lambda uow: uow.tickets.add(third)
        )
        for refused in (second, third):
            assert await _ticket(uow_factory, refused.ticket_id) is None

    async def test_two_tickets_for_a_seat_in_one_unit_are_refused(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """The fence holds inside one unit of work too; neither ticket is stored."""
        session_id = SessionId(uuid4())
        s = seat("A", 1, 1)
        first, second = (new_ticket(session_id=session_id, seat_id=s) for _ in range(2))

        async def both(uow: UnitOfWork) -> None:
            await uow.tickets.add(first)
            await uow.tickets.add(second)

        await refused_at_add_or_commit(uow_factory, SeatAlreadyTicketed, both)
        sold = await read(uow_factory, lambda uow: uow.tickets.sold_seats(session_id))
        assert dict(sold) == {}

    async def test_racing_units_sell_a_seat_exactly_once(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Two units adding a ticket for one seat at once: exactly one commits, whole.

        The loser stores nothing at all, not even its changes to other aggregates.
        """
        session_id = SessionId(uuid4())
        s = seat("A", 1, 1)
        tickets = [new_ticket(session_id=session_id, seat_id=s) for _ in range(2)]
        orders = [new_order(session_id=session_id, seat_ids=(s,)) for _ in tickets]
        barrier = asyncio.Barrier(len(tickets))

        async def sell(ticket: Ticket, order: Order) -> None:
            async with uow_factory() as uow:
                await wait_for_each_other(barrier)
                await uow.orders.add(order)
                await uow.tickets.add(ticket)
                await let_others_run()
                await uow.commit()

        outcomes = await asyncio.gather(
            *(sell(t, o) for t, o in zip(tickets, orders, strict=True)), return_exceptions=True
        )
        assert sum(o is None for o in outcomes) == 1, outcomes
        assert all(isinstance(o, SeatAlreadyTicketed) for o in outcomes if o is not None), outcomes
        won = outcomes.index(None)
        stored = [await _ticket(uow_factory, t.ticket_id) for t in tickets]
        assert [t.ticket_id for t in stored if t is not None] == [tickets[won].ticket_id]
        stored_orders = [await _order(uow_factory, o.order_id) for o in orders]
        assert [o is not None for o in stored_orders] == [i == won for i in range(len(orders))]

    async def test_a_voided_tickets_seat_can_be_ticketed_again(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """After a refund voids the ticket, the seat sells again."""
        session_id = SessionId(uuid4())
        s = seat("A", 1, 1)
        first = new_ticket(session_id=session_id, seat_id=s)
        await in_unit(uow_factory, lambda uow: uow.tickets.add(first))
        await _void(uow_factory, first.ticket_id)
        second = new_ticket(session_id=session_id, seat_id=s)
        await in_unit(uow_factory, lambda uow: uow.tickets.add(second))
        found = await read(uow_factory, lambda uow: uow.tickets.get(second.ticket_id))
        assert found is not None
        assert found.status is TicketStatus.ISSUED
        voided = await read(uow_factory, lambda uow: uow.tickets.get(first.ticket_id))
        assert voided is not None
        assert voided.status is TicketStatus.VOIDED

    async def test_sold_seats_are_the_live_tickets_seats_with_their_orders(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Voided tickets and other sessions do not count; the area filter narrows."""
        session_id = SessionId(uuid4())
        live = [seat("A", 1, 1), seat("A", 1, 2), seat("B", 1, 1)]
        tickets = [new_ticket(session_id=session_id, seat_id=s) for s in live]
        voided = new_ticket(session_id=session_id, seat_id=seat("A", 2, 1))
        elsewhere = new_ticket(session_id=SessionId(uuid4()), seat_id=seat("A", 2, 2))
        await add_each(uow_factory, lambda uow: uow.tickets, [*tickets, voided, elsewhere])
        await _void(uow_factory, voided.ticket_id)

        every = await read(uow_factory, lambda uow: uow.tickets.sold_seats(session_id))
        assert dict(every) == {t.seat_id: t.order_id for t in tickets}
        area_a = await read(
            uow_factory, lambda uow: uow.tickets.sold_seats(session_id, AreaId("A"))
        )
        assert dict(area_a) == {t.seat_id: t.order_id for t in tickets[:2]}
        nothing = await read(uow_factory, lambda uow: uow.tickets.sold_seats(SessionId(uuid4())))
        assert dict(nothing) == {}

    async def test_list_for_user_pages_through_their_tickets_oldest_first(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Every ticket of the user exactly once, voided ones too, in issue order."""
        owner = UserId(uuid4())
        session_id = SessionId(uuid4())
        tickets = [
            new_ticket(
                session_id=session_id,
                seat_id=seat("A", 1, n),
                user_id=owner,
                now=T0 + timedelta(seconds=n),
            )
            for n in range(1, 6)
        ]
        someone_else = new_ticket(session_id=session_id, seat_id=seat("A", 2, 1))
        await add_each(uow_factory, lambda uow: uow.tickets, [*tickets, someone_else])
        await _void(uow_factory, tickets[1].ticket_id)
        seen = await walk(
            lambda f, c: _tickets_page(f, c, user_id=owner, limit=2), uow_factory, limit=2
        )
        assert [t.ticket_id for t in seen] == [t.ticket_id for t in tickets]
        assert seen[1].status is TicketStatus.VOIDED
        with pytest.raises(InvalidCursor):
            await _tickets_page(uow_factory, "forged", user_id=owner, limit=2)

    async def test_list_for_order_gives_the_orders_tickets(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Exactly the tickets issued for one order."""
        order_id, session_id = OrderId(uuid4()), SessionId(uuid4())
        tickets = [
            new_ticket(session_id=session_id, seat_id=seat("A", 1, n), order_id=order_id)
            for n in (1, 2)
        ]
        another_order = new_ticket(session_id=session_id, seat_id=seat("A", 1, 3))
        await add_each(uow_factory, lambda uow: uow.tickets, [*tickets, another_order])
        listed = await read(uow_factory, lambda uow: uow.tickets.list_for_order(order_id))
        assert sorted(t.ticket_id for t in listed) == sorted(t.ticket_id for t in tickets)

    async def test_adding_an_existing_ticket_id_raises_duplicate_error(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A second ticket under one id is refused, even for another seat."""
        ticket = new_ticket(session_id=SessionId(uuid4()), seat_id=seat("A", 1, 1))
        await in_unit(uow_factory, lambda uow: uow.tickets.add(ticket))
        twin = new_ticket(session_id=SessionId(uuid4()), seat_id=seat("A", 1, 2))
        twin.ticket_id = ticket.ticket_id
        await refused_at_add_or_commit(
            uow_factory, DuplicateError, lambda uow: uow.tickets.add(twin)
        )
        found = await read(uow_factory, lambda uow: uow.tickets.get(ticket.ticket_id))
        assert found is not None
        assert found.seat_id == ticket.seat_id


# --- processed events ----------------------------------------------------------------


class ProcessedEventRepositoryContract:
    """What every ``ProcessedEventRepository`` must do. Subclasses define ``uow_factory``."""

    async def test_add_is_true_the_first_time_only(self, uow_factory: UnitOfWorkFactory) -> None:
        """The first record wins; later ones, in the same or another unit, say False."""
        consumer, event_id = f"consumer-{uuid4().hex}", uuid4()

        async def twice(uow: UnitOfWork) -> tuple[bool, bool]:
            return (
                await uow.processed_events.add(consumer, event_id),
                await uow.processed_events.add(consumer, event_id),
            )

        assert await in_unit(uow_factory, twice) == (True, False)
        again = await in_unit(uow_factory, lambda uow: uow.processed_events.add(consumer, event_id))
        assert again is False

    async def test_contains_says_whether_the_consumer_handled_the_event(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Recorded per consumer: another consumer of the same event has not handled it."""
        consumer, other, event_id = f"c-{uuid4().hex}", f"c-{uuid4().hex}", uuid4()

        async def contains(c: str, e: UUID) -> bool:
            return await read(uow_factory, lambda uow: uow.processed_events.contains(c, e))

        assert await contains(consumer, event_id) is False
        assert await in_unit(uow_factory, lambda uow: uow.processed_events.add(consumer, event_id))
        assert await contains(consumer, event_id) is True
        assert await contains(other, event_id) is False
        assert await contains(consumer, uuid4()) is False
        assert await in_unit(uow_factory, lambda uow: uow.processed_events.add(other, event_id))

    async def test_an_uncommitted_record_is_forgotten(self, uow_factory: UnitOfWorkFactory) -> None:
        """A handler that failed before commit gets the event again."""
        consumer, event_id = f"c-{uuid4().hex}", uuid4()
        async with uow_factory() as uow:
            assert await uow.processed_events.add(consumer, event_id) is True
        assert (
            await read(uow_factory, lambda uow: uow.processed_events.contains(consumer, event_id))
            is False
        )
        assert await in_unit(uow_factory, lambda uow: uow.processed_events.add(consumer, event_id))

    async def test_a_claim_is_refused_once_the_event_was_recorded(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """A claim stores the record with its unit; a second claim refuses its whole unit."""
        consumer, event_id = f"c-{uuid4().hex}", uuid4()
        order = new_order()

        async def claim_and_add(uow: UnitOfWork) -> None:
            await uow.processed_events.claim(consumer, event_id)
            await uow.orders.add(order)

        await in_unit(uow_factory, lambda uow: uow.processed_events.claim(consumer, event_id))
        assert await read(
            uow_factory, lambda uow: uow.processed_events.contains(consumer, event_id)
        )
        await refused_at_add_or_commit(uow_factory, DuplicateError, claim_and_add)
        assert await read(uow_factory, lambda uow: uow.orders.get(order.order_id)) is None

    async def test_a_claim_rolled_back_is_forgotten(self, uow_factory: UnitOfWorkFactory) -> None:
        """A handler that failed before commit can claim the event again."""
        consumer, event_id = f"c-{uuid4().hex}", uuid4()
        async with uow_factory() as uow:
            await uow.processed_events.claim(consumer, event_id)
        await in_unit(uow_factory, lambda uow: uow.processed_events.claim(consumer, event_id))
        assert await read(
            uow_factory, lambda uow: uow.processed_events.contains(consumer, event_id)
        )

    async def test_racing_deliveries_are_handled_exactly_once(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        """Two units recording one event at once: exactly one sees True and commits."""
        consumer, event_id = f"c-{uuid4().hex}", uuid4()
        barrier = asyncio.Barrier(2)

        async def handle() -> bool:
            async with uow_factory() as uow:
                await wait_for_each_other(barrier)
                first = await uow.processed_events.add(consumer, event_id)
                await let_others_run()
                await uow.commit()
                return first

        outcomes = await asyncio.gather(handle(), handle(), return_exceptions=True)
        handled = [o for o in outcomes if o is True]
        assert len(handled) == 1, outcomes
        for outcome in outcomes:
            assert isinstance(outcome, bool | DuplicateError | ConcurrencyError), outcomes
