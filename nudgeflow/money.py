"""Money as integer minor units plus an ISO 4217 currency; never floats.

``Money.parse("10.00 USD")`` and ``to_minor_units("12.5", "USD")`` are the only ways text
becomes money, so every file and import agrees on rounding (there is none: too many
decimals is an error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Currencies whose minor unit is not 1/100 (ISO 4217); every other currency has two decimals.
_EXPONENTS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MONEY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Za-z]{3})\s*$")


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def normalise_currency(text: str) -> str:
    """Upper-case a currency code and check its shape (``'usd'`` → ``'USD'``)."""
    code = text.strip().upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"expected a three-letter ISO currency code such as USD, got {text!r}")
    return code


def to_minor_units(amount: str, currency: str) -> int:
    """Convert a decimal string to integer minor units of ``currency``, refusing rounding."""
    try:
        value = Decimal(amount.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"expected a decimal number such as 12.50, got {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a decimal number such as 12.50, got {amount!r}")
    exponent = currency_exponent(currency)
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount!r} has more decimals than {currency} allows ({exponent})")
    return int(scaled)


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
