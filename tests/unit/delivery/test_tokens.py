"""Unsubscribe tokens: round trip, tampering, other keys, links pasted whole."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from delivery.tokens import (
    BadTokenError,
    UnsubscribeToken,
    make_unsubscribe_link,
    make_unsubscribe_token,
    member_links,
    read_unsubscribe_token,
)

KEY = SecretStr("test-signing-key")


def test_round_trip_carries_member_and_campaign() -> None:
    token = make_unsubscribe_token(KEY, "m-42", "loyalist-discount")
    assert read_unsubscribe_token(token, KEY) == UnsubscribeToken("m-42", "loyalist-discount")


def test_link_is_under_the_public_base_url_and_url_safe() -> None:
    link = make_unsubscribe_link("https://shop.example/", KEY, "m 1/ü", "c")
    assert link.startswith("https://shop.example/u/")
    token = link.rsplit("/", 1)[1]
    assert all(ch.isalnum() or ch in "-_." for ch in token)
    assert read_unsubscribe_token(link, KEY) == UnsubscribeToken("m 1/ü", "c")


def test_member_links_share_one_token() -> None:
    links = member_links("https://shop.example", KEY, "m1", "c1")
    assert links["unsubscribe"].rsplit("/", 1)[1] == links["preferences"].rsplit("/", 1)[1]
    assert links["preferences"].startswith("https://shop.example/preferences/")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: t[:3] + ("x" if t[3] != "x" else "y") + t[4:],  # payload changed
        lambda t: t[: len(t) // 2],  # truncated
        lambda t: t.replace(".", ""),  # no separator
        lambda t: "",
        lambda t: "not-a-token",
    ],
)
def test_tampered_tokens_are_refused(mangle: object) -> None:
    token = make_unsubscribe_token(KEY, "m1", "c1")
    with pytest.raises(BadTokenError):
        read_unsubscribe_token(mangle(token), KEY)  # type: ignore[operator]


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = make_unsubscribe_token("another-key", "m1", "c1")
    with pytest.raises(BadTokenError, match="signature"):
        read_unsubscribe_token(token, KEY)


def test_a_valid_signature_over_the_wrong_shape_is_refused() -> None:
    from itsdangerous import URLSafeSerializer

    from delivery.tokens import SALT

    # Same key, but neither our salt nor our payload: still refused.
    other = URLSafeSerializer(KEY.get_secret_value(), salt="other").dumps(["m1", "c1"])
    with pytest.raises(BadTokenError):
        read_unsubscribe_token(str(other), KEY)
    import hashlib

    shaped = URLSafeSerializer(
        KEY.get_secret_value(), salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    ).dumps({"m": "m1"})
    with pytest.raises(BadTokenError, match="contents"):
        read_unsubscribe_token(str(shaped), KEY)
