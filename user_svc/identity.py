"""What a username and an email address may be."""

from __future__ import annotations

import re

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,150}")
EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit
_EMAIL_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def username_problem(username: str) -> str | None:
    if not USERNAME.fullmatch(username):
        return "3-150 characters: letters, digits and _ . - only."
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
