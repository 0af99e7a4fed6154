from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from openticket.domain.shared import CurrencyMismatch, Money, ValidationError, total_of


def twd(amount: str) -> Money:
    return Money(Decimal(amount), "TWD")


def test_adding_amounts_of_one_currency_is_exact() -> None:
    assert Money("0.10", "TWD") + Money("0.20", "TWD") == twd("0.30")


def test_subtracting_can_go_below_zero_and_says_so() -> None:
    result = twd("1.00") - twd("2.50")
    assert result == twd("-1.50")
    assert result.is_negative


def test_multiplying_by_a_whole_number_of_seats() -> None:
    assert twd("12.50") * 3 == twd("37.50")


@pytest.mark.parametrize("times", [1.5, True, Decimal(2), "2"])
def test_multiplying_by_anything_but_an_int_is_refused(times: Any) -> None:
    with pytest.raises(TypeError):
        twd("1.00") * times


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_mixing_currencies_is_refused(combine: Callable[[Money, Money], object]) -> None:
    with pytest.raises(CurrencyMismatch):
        combine(twd("1.00"), Money("1.00", "USD"))


def test_amounts_in_different_currencies_are_never_equal() -> None:
    assert Money("1.00", "USD") != twd("1.00")


def test_equal_amounts_compare_equal_whatever_their_scale() -> None:
    assert Money("1", "TWD") == twd("1.00")
    assert hash(Money("1", "TWD")) == hash(twd("1.00"))


def test_ordering_within_one_currency() -> None:
    assert twd("1.00") < twd("1.01") <= twd("1.01") < twd("2")
    assert twd("3") > twd("2.99") >= twd("2.99")


@pytest.mark.parametrize("amount", [1.5, 0.1, float("nan"), True])
def test_floats_and_bools_are_refused_as_amounts(amount: Any) -> None:
    with pytest.raises(ValidationError):
        Money(amount, "TWD")


@pytest.mark.parametrize("amount", ["abc", "NaN", "Infinity", "-Infinity", ""])
def test_amounts_that_are_not_finite_numbers_are_refused(amount: str) -> None:
    with pytest.raises(ValidationError):
        Money(amount, "TWD")


def test_int_and_string_amounts_become_exact_decimals() -> None:
    assert Money(5, "TWD").amount == Decimal(5)
    assert Money("0.1", "TWD").amount == Decimal("0.1")
    assert isinstance(Money("0.1", "TWD").amount, Decimal)


@pytest.mark.parametrize("currency", ["twd", "TW", "TWDX", "T1D", "", "TWD\n", " TWD", 1])
def test_a_currency_must_be_three_capital_letters(currency: Any) -> None:
    with pytest.raises(ValidationError):
        Money("1.00", currency)


def test_combining_money_with_a_plain_number_is_a_type_error() -> None:
    one: Any = 1
    with pytest.raises(TypeError):
        twd("1.00") + one


def test_total_of_sums_in_one_currency_and_starts_at_zero() -> None:
    assert total_of([], "TWD") == Money.zero("TWD")
    assert total_of([twd("1.10"), twd("2.20"), twd("3.30")], "TWD") == twd("6.60")


def test_total_of_refuses_an_amount_in_another_currency() -> None:
    with pytest.raises(CurrencyMismatch):
        total_of([twd("1.00"), Money("1.00", "USD")], "TWD")
    with pytest.raises(CurrencyMismatch):
        total_of([twd("1.00")], "USD")


def test_money_prints_with_two_places_and_its_currency() -> None:
    assert str(Money("12.3", "TWD")) == "12.30 TWD"
    assert str(Money(7, "USD")) == "7.00 USD"
