"""The heuristic bot policy: which counts a request takes, and the verdict they earn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from openticket.application.bot_policy import BotPolicy, Threshold
from openticket.application.ports.bot_defence import (
    BotAction,
    BotReason,
    Signal,
    SignalKind,
    Verdict,
)
from openticket.domain.shared import SessionId, UserId

NOW = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
POLICY = BotPolicy()


def signal(
    kind: SignalKind = SignalKind.JOIN,
    *,
    address: str | None = "203.0.113.5",
    device_id: str | None = None,
    joined_at: datetime | None = None,
    admitted_at: datetime | None = None,
) -> Signal:
    return Signal(
        kind=kind,
        session_id=SessionId(uuid4()),
        user_id=UserId(uuid4()),
        at=NOW,
        address=address,
        device_id=device_id,
        joined_at=joined_at,
        admitted_at=admitted_at,
    )


def judge(s: Signal, policy: BotPolicy = POLICY, **counts: int) -> Verdict:
    """The verdict with the given counts (by reason word); any other count is 0."""
    taken = [(reason, counts.get(reason, 0)) for reason, _ in policy.tallies(s)]
    return policy.judge(s, taken)


# --- counts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "limit"),
    [
        (BotReason.ACCOUNT_VELOCITY, POLICY.requests_per_account.limit),
        (BotReason.ADDRESS_VELOCITY, POLICY.requests_per_address.limit),
        (BotReason.DEVICE_VELOCITY, POLICY.requests_per_device.limit),
        (BotReason.ACCOUNTS_PER_ADDRESS, POLICY.accounts_per_address.limit),
        (BotReason.REPEATED_REFUSALS, POLICY.refusals_per_account.limit),
    ],
)
def test_a_count_at_its_limit_passes_and_one_more_is_suspect(reason: BotReason, limit: int) -> None:
    join = signal(device_id="phone")
    at_limit = judge(join, **{reason: limit})
    assert at_limit == Verdict(BotAction.ALLOW, 0.5)
    past = judge(join, **{reason: limit + 1})
    assert past.action is BotAction.SEND_BACK
    assert past.reasons == (reason,)
    assert 0.5 < past.score < 1
    assert judge(join, **{reason: 2 * limit}).score == 1.0
    assert judge(join, **{reason: 100 * limit}).score == 1.0


def test_the_same_counts_refuse_an_order_and_send_a_join_back() -> None:
    too_many = POLICY.requests_per_account.limit + 1
    assert judge(signal(SignalKind.JOIN), account_velocity=too_many).action is BotAction.SEND_BACK
    assert judge(signal(SignalKind.ORDER), account_velocity=too_many).action is BotAction.REFUSE


def test_every_reason_past_its_limit_is_given_in_a_stable_order() -> None:
    verdict = judge(
        signal(device_id="phone"),
        device_velocity=1000,
        account_velocity=1000,
        accounts_per_address=1000,
    )
    assert verdict.reasons == (
        "account_velocity",
        "accounts_per_address",
        "device_velocity",
    )
    assert verdict.score == 1.0


def test_quiet_counts_are_allowed_with_a_low_score() -> None:
    verdict = judge(signal(), account_velocity=1, address_velocity=3, accounts_per_address=2)
    assert verdict.action is BotAction.ALLOW
    assert verdict.reasons == ()
    # the worst signal's: 2 accounts of 20 behind the address (3 requests of 60 are less)
    assert verdict.score == pytest.approx(2 / (2 * POLICY.accounts_per_address.limit))


# --- timing --------------------------------------------------------------------------


def order_after(elapsed: timedelta, *, since_join: timedelta | None = None) -> Signal:
    admitted = NOW - elapsed
    joined = admitted - timedelta(minutes=3) if since_join is None else NOW - since_join
    return signal(SignalKind.ORDER, joined_at=joined, admitted_at=admitted)


@pytest.mark.parametrize(
    ("elapsed", "action"),
    [
        (timedelta(milliseconds=5), BotAction.REFUSE),
        (timedelta(seconds=1.499), BotAction.REFUSE),
        (timedelta(seconds=1.5), BotAction.ALLOW),
        (timedelta(seconds=3), BotAction.ALLOW),
    ],
)
def test_an_order_sooner_than_a_person_can_after_admission_is_refused(
    elapsed: timedelta, action: BotAction
) -> None:
    verdict = judge(order_after(elapsed))
    assert verdict.action is action
    assert (BotReason.INHUMAN_TIMING in verdict.reasons) is (action is BotAction.REFUSE)


def test_timing_is_measured_from_the_admission_not_the_join() -> None:
    """Joined long ago, admitted 5 ms ago: still no time to choose seats."""
    verdict = judge(order_after(timedelta(milliseconds=5), since_join=timedelta(minutes=10)))
    assert verdict.reasons == (BotReason.INHUMAN_TIMING,)
    assert verdict.score == 1.0


def test_without_an_admission_timing_is_measured_from_the_join() -> None:
    quick = signal(SignalKind.ORDER, joined_at=NOW - timedelta(milliseconds=20))
    assert judge(quick).reasons == (BotReason.INHUMAN_TIMING,)
    paced = signal(SignalKind.ORDER, joined_at=NOW - timedelta(seconds=20))
    assert judge(paced).action is BotAction.ALLOW


def test_an_order_at_or_before_its_admission_scores_one() -> None:
    assert judge(order_after(timedelta(0))).score == 1.0
    assert judge(order_after(timedelta(seconds=-2))).score == 1.0


def test_the_timing_score_is_half_at_the_minimum_and_one_at_half_of_it() -> None:
    assert POLICY.timing_score(order_after(timedelta(seconds=1.5))) == pytest.approx(0.5)
    assert POLICY.timing_score(order_after(timedelta(seconds=0.75))) == pytest.approx(1.0)
    assert POLICY.timing_score(order_after(timedelta(seconds=3))) == pytest.approx(0.25)


def test_joins_and_orders_without_a_queue_have_no_timing() -> None:
    assert POLICY.timing_score(signal(SignalKind.JOIN, joined_at=NOW)) is None
    assert POLICY.timing_score(signal(SignalKind.ORDER)) is None
    assert judge(signal(SignalKind.ORDER)).action is BotAction.ALLOW


def test_a_minimum_think_time_of_zero_turns_the_timing_off() -> None:
    policy = BotPolicy(minimum_think_time=timedelta(0))
    assert judge(order_after(timedelta(0)), policy).action is BotAction.ALLOW


# --- what is counted -----------------------------------------------------------------


def test_a_request_counts_its_account_address_device_and_reads_the_refusals() -> None:
    s = signal(device_id="phone-1")
    tallies = dict(POLICY.tallies(s))
    assert set(tallies) == {
        BotReason.ACCOUNT_VELOCITY,
        BotReason.ADDRESS_VELOCITY,
        BotReason.ACCOUNTS_PER_ADDRESS,
        BotReason.DEVICE_VELOCITY,
        BotReason.REPEATED_REFUSALS,
    }
    accounts = tallies[BotReason.ACCOUNTS_PER_ADDRESS]
    assert accounts.member == str(s.user_id)
    assert accounts.window == POLICY.accounts_per_address.window
    assert str(s.user_id) in tallies[BotReason.ACCOUNT_VELOCITY].key
    assert "203.0.113.5" in tallies[BotReason.ADDRESS_VELOCITY].key
    refusals = tallies[BotReason.REPEATED_REFUSALS]
    assert not refusals.add
    recorded = POLICY.refusal_tally(s)
    assert recorded.add
    assert recorded.key == refusals.key
    for reason, tally in tallies.items():
        if reason is not BotReason.REPEATED_REFUSALS:
            assert tally.add, reason
    # the score saturates at twice the limit: nothing more is worth keeping
    assert tallies[BotReason.ACCOUNT_VELOCITY].cap == 2 * POLICY.requests_per_account.limit


def test_unknown_address_and_device_are_not_counted() -> None:
    reasons = [reason for reason, _ in POLICY.tallies(signal(address=None))]
    assert reasons == [BotReason.ACCOUNT_VELOCITY, BotReason.REPEATED_REFUSALS]


def test_a_device_id_of_any_length_makes_a_short_key() -> None:
    long_header = "x" * 10_000 + "\udcff"
    key = dict(POLICY.tallies(signal(device_id=long_header)))[BotReason.DEVICE_VELOCITY].key
    assert len(key) < 64
    other = dict(POLICY.tallies(signal(device_id="phone")))[BotReason.DEVICE_VELOCITY].key
    assert key != other


def test_two_requests_of_one_device_share_its_key() -> None:
    first = dict(POLICY.tallies(signal(device_id="phone")))[BotReason.DEVICE_VELOCITY]
    second = dict(POLICY.tallies(signal(device_id="phone")))[BotReason.DEVICE_VELOCITY]
    assert first.key == second.key


# --- bad settings and values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "window"),
    [(0, timedelta(minutes=1)), (-3, timedelta(minutes=1)), (5, timedelta(0))],
)
def test_a_threshold_needs_a_positive_limit_and_window(limit: int, window: timedelta) -> None:
    with pytest.raises(ValueError, match="must be at least"):
        Threshold(limit, window)


def test_a_negative_think_time_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        BotPolicy(minimum_think_time=timedelta(seconds=-1))


def test_a_signal_needs_aware_moments() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Signal(
            kind=SignalKind.ORDER,
            session_id=SessionId(uuid4()),
            user_id=UserId(uuid4()),
            at=NOW,
            admitted_at=datetime(2030, 1, 1, 10, 0),
        )


@pytest.mark.parametrize("score", [-0.1, 1.01])
def test_a_verdict_score_is_a_share(score: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Verdict(BotAction.ALLOW, score)
