import pytest

from user_svc.identity import email_problem, normalize_email, username_problem


@pytest.mark.parametrize("username", ["bob", "a.b-c_d", "X" * 150, "user42"])
def test_valid_usernames(username):
    assert username_problem(username) is None


@pytest.mark.parametrize("username", ["ab", "x" * 151, "has space", "semi;colon", "bob\n", "émile", ""])
def test_invalid_usernames(username):
    assert username_problem(username)


def test_email_is_trimmed_and_lower_cased():
    assert normalize_email("  Alice.Smith@Example.COM ") == "alice.smith@example.com"


@pytest.mark.parametrize("email", ["a@example.com", "first.last+tag@sub.example.co.uk", "x_y@a-b.io"])
def test_valid_emails(email):
    assert email_problem(email) is None


@pytest.mark.parametrize(
    "email",
    [
        "plain", "@example.com", "a@", "a@localhost", "a@example.123", "a..b@example.com",
        ".a@example.com", "a b@example.com", "a@-example.com", "a@example.com\n",
        "a@exa_mple.com", "x" * 65 + "@example.com", "a@" + "b" * 250 + ".com",
    ],
)
def test_invalid_emails(email):
    assert email_problem(email)
