from __future__ import annotations

import uuid

from openticket.adapters.system import RandomIdGenerator, SecretTicketCodeGenerator


def test_ids_are_valid_time_ordered_uuid7_and_never_repeat() -> None:
    ids = RandomIdGenerator()
    made = [ids.new_id() for _ in range(50_000)]
    assert len(set(made)) == len(made)
    assert {(u.version, u.variant) for u in made} == {(7, uuid.RFC_4122)}
    assert all(uuid.UUID(str(u)) == u and hash(uuid.UUID(str(u))) == hash(u) for u in made[:100])
    millis = [u.int >> 80 for u in made]
    assert millis == sorted(millis)


def test_two_generators_do_not_share_their_random_bits() -> None:
    first, second = RandomIdGenerator(), RandomIdGenerator()
    assert {first.new_id() for _ in range(1000)}.isdisjoint(second.new_id() for _ in range(1000))


def test_ticket_codes_are_long_and_unique() -> None:
    codes = SecretTicketCodeGenerator()
    made = {codes.new_code() for _ in range(10_000)}
    assert len(made) == 10_000
    assert all(len(c) == 32 for c in made)
