"""The ingestion API's key check: any configured key, compared with all of them."""

from __future__ import annotations

from unittest import mock

from web.ingest import key_is_known

KEYS = ("old-key-0123456789abcdef", "new-key-0123456789abcdef")


def test_any_configured_key_is_known_and_nothing_else() -> None:
    assert key_is_known(KEYS[0], KEYS) and key_is_known(KEYS[1], KEYS)
    assert not key_is_known("new-key-0123456789abcde", KEYS)
    assert not key_is_known("", KEYS)
    assert not key_is_known(KEYS[0], ())


def test_every_key_is_compared_even_after_a_match() -> None:
    with mock.patch("web.ingest.hmac.compare_digest", return_value=True) as compare:
        assert key_is_known(KEYS[0], KEYS)
    assert compare.call_count == len(KEYS)
