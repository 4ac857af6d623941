"""Verified users made the way a reader makes one: register, the code from the console, log in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import requests

from tests.support.processes import ProcessStack

PASSWORD = "correct horse battery staple 42"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    email: str
    access: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def register_and_login(stack: ProcessStack, hint: str = "user") -> Account:
    """A verified user, through the REST edge, with the code read from notify_svc's console."""
    username = f"{hint}_{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.com"
    api = f"{stack.edge_url}/api"
    form = {"username": username, "email": email, "password": PASSWORD}
    registered = requests.post(f"{api}/users/register/", json=form, timeout=10)
    assert registered.status_code == 201, registered.text
    code = stack.verification_code(email)
    verified = requests.post(f"{api}/users/verify_otp/", json={"email": email, "otp_code": code}, timeout=10)
    assert verified.status_code == 200, verified.text
    tokens = requests.post(f"{api}/token/", json={"username": username, "password": PASSWORD}, timeout=10)
    assert tokens.status_code == 200, tokens.text
    return Account(registered.json()["id"], username, email, tokens.json()["access"])
