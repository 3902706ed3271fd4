"""Money's bounds: only ISO 4217 currencies, and amounts that stay below 10^15 minor units
(exact as a double, far from a 64-bit overflow), whatever the text says."""

from __future__ import annotations

import pytest

from nudgeflow.money import (
    CURRENCIES,
    MAX_MINOR_UNITS,
    Money,
    currency_exponent,
    normalise_currency,
)
from nudgeflow.money import to_minor_units as minor


@pytest.mark.parametrize("code", ["XYZ", "USS", "XTS", "XXX", "XAU", "XDR", "ABC"])
def test_unknown_and_non_money_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown ISO 4217 currency '{code.lower()}'"):
        normalise_currency(code.lower())
    with pytest.raises(ValueError, match="unknown ISO 4217 currency"):
        Money.parse(f"10.00 {code}")


def test_current_and_recently_withdrawn_codes_are_known() -> None:
    assert {"USD", "EUR", "JPY", "GBP", "XCG", "ZWG", "SLE", "VED", "XAF", "XOF", "XPF"} <= (
        CURRENCIES
    )
    assert {"ANG", "BGN", "HRK"} <= CURRENCIES  # older exports still import
    assert len(CURRENCIES) == 170
    assert [currency_exponent(c) for c in ("USD", "JPY", "KWD", "CLF")] == [2, 0, 3, 4]


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("9999999999999.99", "USD", MAX_MINOR_UNITS),
        ("-9999999999999.99", "USD", -MAX_MINOR_UNITS),
        ("999999999999999", "JPY", MAX_MINOR_UNITS),
        ("99999999999.9999", "CLF", MAX_MINOR_UNITS),
        ("12.500000000000000000000000000000", "USD", 1250),
        ("-0.00", "USD", 0),
    ],
)
def test_amounts_up_to_the_limit(text: str, currency: str, expected: int) -> None:
    assert minor(text, currency) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10000000000000", "out of range"),
        ("99999999999999999999999", "out of range"),  # overflows 64-bit minor units
        ("-99999999999999999999999", "out of range"),
        ("1e999999999", "out of range"),  # would overflow the decimal context
        ("1e-999999999", "more decimals"),
        ("12.500000000000000000000000001", "more decimals"),
        ("NaN", "expected a decimal number"),
        ("Infinity", "expected a decimal number"),
        ("-inf", "expected a decimal number"),
    ],
)
def test_amounts_beyond_the_limit_or_not_numbers_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        minor(text, "USD")
