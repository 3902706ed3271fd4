"""The currencies nudgeflow accepts: ISO 4217 codes and the decimals of their minor unit.

The codes of ISO 4217 list one as published on 2026-01-01, without the entries that are not
money a member pays with (gold, silver, platinum and palladium, the bond-market and
accounting units, the SDR, the testing code XTS and XXX), plus the codes withdrawn since
2021, so that older exports still import: ANG (replaced by XCG), BGN (the euro), CUC, HRK
(the euro), SLL (replaced by SLE) and ZWL (replaced by ZWG).

A three-letter code that is not here (a typo such as ``USS``, or an invented ``XYZ``) is
refused wherever text becomes money, so a ledger, a budget or a member's spend never
silently holds a currency no provider knows.
"""

from __future__ import annotations

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
