"""What a username and an email address may be."""

from __future__ import annotations

import re

from common.contract_rules import string_rules
from taskmgr.user.v1 import user_service_pb2 as pb

# The contract's rules (user_service.proto), which the edge documents: stated once.
_USERNAME_RULES = string_rules(pb.RegisterRequest.DESCRIPTOR, "username")
USERNAME = re.compile(_USERNAME_RULES.pattern)
EMAIL_MAX_LENGTH = string_rules(pb.RegisterRequest.DESCRIPTOR, "email").max_len  # RFC 5321 path limit
_EMAIL_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def username_problem(username: str) -> str | None:
    length_ok = _USERNAME_RULES.min_len <= len(username) <= _USERNAME_RULES.max_len
    if not (length_ok and USERNAME.fullmatch(username)):
        low, high = _USERNAME_RULES.min_len, _USERNAME_RULES.max_len
        return f"{low}-{high} characters: letters, digits and _ . - only."
    return None


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why a normalised address is refused: the common dot-atom form, a dotted domain."""
    if len(email) > EMAIL_MAX_LENGTH:
        return f"At most {EMAIL_MAX_LENGTH} characters."
    local, at, domain = email.rpartition("@")
    labels = domain.split(".")
    valid = (
        at
        and 0 < len(local) <= 64
        and _EMAIL_LOCAL.fullmatch(local)
        and len(labels) >= 2
        and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )
    return None if valid else "Enter a valid email address."
