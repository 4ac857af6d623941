import pytest

from common.errors import InvalidArgument
from common.paging import MAX_PAGE_SIZE, PageTokens, page_size, query_key


def test_page_size_defaults_clamps_and_refuses_negative():
    assert page_size(0) == 20
    assert page_size(7) == 7
    assert page_size(10_000) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1)
    assert caught.value.reason == "INVALID_PAGE_SIZE"


def test_token_round_trip_and_first_page():
    tokens = PageTokens(b"k" * 32)
    query = {"status": "done", "ordering": "-created_at"}
    token = tokens.encode(["2026-01-01T00:00:00Z", 42], query)
    assert tokens.decode(token, query) == ["2026-01-01T00:00:00Z", 42]
    assert tokens.decode("", query) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],  # flipped character
        lambda t: t + "x",
        lambda t: "not-a-token",
        lambda t: "",  # handled separately: empty is the first page
    ],
)
def test_tampered_token_is_refused(mangle):
    tokens = PageTokens(b"k" * 32)
    token = tokens.encode([1], {"q": ""})
    mangled = mangle(token)
    if not mangled:
        assert tokens.decode(mangled, {"q": ""}) is None
        return
    with pytest.raises(InvalidArgument) as caught:
        tokens.decode(mangled, {"q": ""})
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_token_from_another_query_or_key_is_refused():
    token = PageTokens(b"k" * 32).encode([1], {"status": "done"})
    with pytest.raises(InvalidArgument):
        PageTokens(b"k" * 32).decode(token, {"status": "pending"})
    with pytest.raises(InvalidArgument):
        PageTokens(b"other-key").decode(token, {"status": "done"})


def test_a_query_key_gives_and_takes_the_same_tokens_as_its_query():
    tokens, query = PageTokens(b"k" * 32), {"status": "done", "viewer": {"user_id": 1}}
    key = query_key(query)
    assert tokens.encode([1, 2], key) == tokens.encode([1, 2], query)
    assert tokens.decode(tokens.encode([1, 2], query), key) == [1, 2]
    with pytest.raises(InvalidArgument):
        tokens.decode(tokens.encode([1, 2], key), {"status": "pending"})
