"""Money as integer minor units plus an ISO 4217 currency; never floats.

``Money.parse("10.00 USD")`` and ``to_minor_units("12.5", "USD")`` are the only ways text
becomes money, so every file and import agrees on rounding (there is none: too many
decimals is an error), on the currencies there are (``CURRENCIES``) and on how large an amount
may be (``MAX_MINOR_UNITS``).

``CURRENCIES`` holds the codes of ISO 4217 list one as published on 2026-01-01, without the
entries that are not money a member pays with (gold, silver, platinum and palladium, the
bond-market and accounting units, the SDR, the testing code XTS and XXX), plus the codes
withdrawn since 2021, so that older exports still import: ANG (replaced by XCG), BGN (the
euro), CUC, HRK (the euro), SLL (replaced by SLE) and ZWL (replaced by ZWG). A code that is
not there (a typo such as ``USS``, an invented ``XYZ``) is refused wherever text becomes
money, so a ledger, a budget or a member's spend never holds a currency no provider knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, DecimalException

# Currencies whose minor unit is not 1/100; every other code below has two decimals.
EXPONENTS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}

_TWO_DECIMALS = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK
    LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST
    XCD XCG YER ZAR ZMW ZWG
"""
_WITHDRAWN_SINCE_2021 = "ANG BGN CUC HRK SLL ZWL"

CURRENCIES = frozenset(EXPONENTS) | frozenset((_TWO_DECIMALS + _WITHDRAWN_SINCE_2021).split())

# Amounts stay below 10^15 minor units (9,999,999,999,999.99 USD): exact as a double (and so
# as a JSON number anywhere), far inside a 64-bit column, and a member's spend can add up
# thousands of them before a 64-bit sum could overflow.
_DIGITS = 15
MAX_MINOR_UNITS = 10**_DIGITS - 1
_QUANTA = {e: Decimal(1).scaleb(-e) for e in (0, 2, 3, 4)}  # the minor unit, per exponent
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MONEY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Za-z]{3})\s*$")


def currency_exponent(currency: str) -> int:
    return EXPONENTS.get(currency, 2)


def normalise_currency(text: str) -> str:
    """Upper-case an ISO 4217 currency code and check it is one (``'usd'`` → ``'USD'``)."""
    code = text.strip().upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"expected a three-letter ISO currency code such as USD, got {text!r}")
    if code not in CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {text.strip()!r}")
    return code


def to_minor_units(amount: str, currency: str) -> int:
    """Convert a decimal string to integer minor units of ``currency``, refusing rounding and
    amounts of ``MAX_MINOR_UNITS`` or more."""
    try:
        value = Decimal(amount.strip())
    except (DecimalException, AttributeError):
        raise ValueError(f"expected a decimal number such as 12.50, got {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a decimal number such as 12.50, got {amount!r}")
    exponent = currency_exponent(currency)
    # The size is checked first, by the exponent alone: "1e999999999" would overflow the
    # decimal context, and the remainder below is exact only for amounts of sane size.
    magnitude = value.adjusted() if value else 0
    if magnitude >= _DIGITS - exponent:
        largest = format_minor_units(MAX_MINOR_UNITS, currency)
        raise ValueError(f"{amount.strip()!r} is out of range (at most {largest} {currency})")
    if magnitude < -exponent or value % _QUANTA[exponent]:
        raise ValueError(f"{amount!r} has more decimals than {currency} allows ({exponent})")
    return int(value.scaleb(exponent))


def format_minor_units(amount_minor: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    value = Decimal(amount_minor).scaleb(-exponent)
    return f"{value:.{exponent}f}"


@dataclass(frozen=True, order=True)
class Money:
    """An amount in integer minor units of one currency."""

    amount_minor: int
    currency: str

    @classmethod
    def parse(cls, text: str) -> Money:
        """Parse ``'10.00 USD'``; raise ``ValueError`` with a user-facing message."""
        match = _MONEY.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"expected an amount and a currency such as '10.00 USD', got {text!r}")
        currency = normalise_currency(match.group(2))
        return cls(to_minor_units(match.group(1), currency), currency)

    def __str__(self) -> str:
        return f"{format_minor_units(self.amount_minor, self.currency)} {self.currency}"
