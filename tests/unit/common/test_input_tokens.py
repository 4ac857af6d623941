"""Signed tokens (page tokens, access tokens) are decoded canonically before their
signature is checked: one spelling per token (common.base64url)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import base64url
from common.errors import InvalidArgument, Unauthenticated
from common.paging import PageTokens
from tests.support.tokens import TestIssuer

QUERY = {"status": "done"}


def _respellings(token: str) -> list[str]:
    """Other strings the standard library decodes to the same bytes as `token`."""
    middle = len(token) // 2
    spellings = [
        token[:middle] + "!" + token[middle:],  # a foreign character, skipped by b64decode
        token[:middle] + "\n" + token[middle:],
        token[:middle] + "==" + token[middle:],
        token + "=" * (-len(token) % 4 or 4),  # padding the encoder never writes
        " " + token,
        token.replace("-", "+").replace("_", "/"),  # the other alphabet
    ]
    # The same bytes with padding bits set in the last character.
    if len(token) % 4:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(token[-1])
        spellings.append(token[:-1] + alphabet[last | 1])
    return [spelling for spelling in spellings if spelling != token]


def test_the_standard_library_would_accept_the_respellings():
    token = base64url.encode(b"\x00\x10\x83\x10Q\x87 \x92\x8b0\xd3\x8fA\x14\x93")  # 15 bytes
    for spelling in _respellings(base64url.encode(b"abcd")) + _respellings(token):
        try:
            base64.urlsafe_b64decode(spelling + "=" * (-len(spelling) % 4))
        except ValueError:
            continue  # some are refused there too; the point is the others
        with pytest.raises(ValueError):  # noqa: PT011
            base64url.decode(spelling)


@given(st.binary(max_size=64))
def test_base64url_round_trips_and_every_respelling_is_refused(data):
    token = base64url.encode(data)
    assert base64url.decode(token) == data
    for spelling in _respellings(token):
        with pytest.raises(ValueError):  # noqa: PT011
            base64url.decode(spelling)


@given(st.text(max_size=30))
def test_base64url_decode_raises_only_value_error(text):
    try:
        data = base64url.decode(text)
    except ValueError:
        return
    assert base64url.encode(data) == text


def test_a_respelled_page_token_is_refused():
    tokens = PageTokens(b"k" * 32)
    token = tokens.encode([1, 2], QUERY)
    assert tokens.decode(token, QUERY) == [1, 2]
    for spelling in _respellings(token):
        with pytest.raises(InvalidArgument) as caught:
            tokens.decode(spelling, QUERY)
        assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_a_respelled_access_token_is_refused():
    # PyJWT 2.15 refuses most respellings itself, but takes a signature with `==` appended.
    issuer = TestIssuer()
    verifier = issuer.verifier()
    header, payload, signature = issuer.token(7).split(".")
    assert verifier.verify(f"{header}.{payload}.{signature}").user_id == 7
    for spelling in _respellings(signature):
        with pytest.raises(Unauthenticated) as caught:
            verifier.verify(f"{header}.{payload}.{spelling}")
        assert caught.value.reason == "TOKEN_INVALID"
    for bad in (f"{header}.{payload}", f"{header}.{payload}.{signature}.", f"{header}..{signature}"):
        with pytest.raises(Unauthenticated):
            verifier.verify(bad)
