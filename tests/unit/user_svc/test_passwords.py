import pytest

from user_svc.passwords import Passwords, password_problems


@pytest.mark.parametrize("password", ["correct horse battery", "x" * 7 + "Q", "ü" * 128])
def test_acceptable_passwords(password):
    assert password_problems(password, "alice") == []


def test_length_is_8_to_128_characters():
    assert password_problems("Ab1!xyz") == ["At least 8 characters."]
    assert password_problems("a" * 129 + "Q") == ["At most 128 characters."]


@pytest.mark.parametrize("password", ["password", "12345678", "Password1", "QWERTYUIOP", "iloveyou"])
def test_common_passwords_are_refused_in_any_case(password):
    assert password_problems(password) == ["This password is too common."]


def test_a_password_containing_the_username_is_refused():
    assert password_problems("my-Alice-pass-2024", "alice") == ["The password must not contain the username."]


@pytest.fixture(scope="module")
def passwords():
    return Passwords(time_cost=1, memory_cost_kib=1024, parallelism=1, concurrency=2)


def test_hashes_are_argon2id_salted_and_verify(passwords):
    first, second = passwords.hash("correct horse battery"), passwords.hash("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second
    assert passwords.verify(first, "correct horse battery")
    assert not passwords.verify(first, "correct horse batterY")


def test_no_hash_or_a_broken_hash_never_verifies(passwords):
    assert not passwords.verify(None, "not a real password, only spends the time")
    assert not passwords.verify("not-a-hash", "anything")


def test_a_hash_made_with_other_parameters_needs_rehash(passwords):
    stronger = Passwords(time_cost=2, memory_cost_kib=1024, parallelism=1, concurrency=1)
    assert passwords.needs_rehash(stronger.hash("correct horse battery"))
    assert not passwords.needs_rehash(passwords.hash("correct horse battery"))


def test_a_full_hashing_queue_sheds_load_with_retry_after():
    from common.errors import ResourceExhausted

    busy = Passwords(time_cost=1, memory_cost_kib=1024, parallelism=1, concurrency=1, queue_seconds=0.05)
    busy._slots.acquire()  # another request holds the only slot
    try:
        with pytest.raises(ResourceExhausted) as caught:
            busy.hash("correct horse battery")
        assert caught.value.reason == "SERVER_BUSY"
        assert caught.value.retry_after == 1
    finally:
        busy._slots.release()
    # Once the slot is free again, hashing works.
    assert busy.verify(busy.hash("correct horse battery"), "correct horse battery")
