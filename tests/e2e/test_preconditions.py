"""Request semantics through the REST edge with the real services: conditional requests
(RFC 9110 section 13) on every task route, authentication before validation, the update
mask (AIP-134), and REQUIRED fields (an empty body is never an action)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("e2e")


def _task(client, tokens, **fields) -> tuple[dict, str]:
    answer = client.post("/api/tasks/", json={"title": "Conditional", **fields}, headers=tokens.auth)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json(), answer.headers["ETag"]


def _stale(client, tokens) -> tuple[dict, str]:
    """A task and the ETag of its first version, which a change has since made stale."""
    task, etag = _task(client, tokens)
    changed = client.patch(f"/api/tasks/{task['id']}/", json={"description": "v2"}, headers=tokens.auth)
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
    return task, etag


def _change(client, tokens, route: str, task_id: int, headers: dict):
    headers = {**tokens.auth, **headers}
    if route == "patch":
        return client.patch(f"/api/tasks/{task_id}/", json={"title": "changed"}, headers=headers)
    if route == "assign":
        return client.post(f"/api/tasks/{task_id}/assign/", json={"user_id": tokens.user_id}, headers=headers)
    return client.delete(f"/api/tasks/{task_id}/", headers=headers)


ROUTES = ["patch", "assign", "delete"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("if_match", ["stale", 'W/"2"', '"abc"', '"02"', '"9", "1"'])
def test_every_state_changing_route_refuses_an_if_match_that_does_not_match(client, user, route, if_match):
    task, etag = _stale(client, user)
    header = etag if if_match == "stale" else if_match

    answer = _change(client, user, route, task["id"], {"If-Match": header})

    assert answer.status_code == 412, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["code"] == "VERSION_MISMATCH"
    after = client.get(f"/api/tasks/{task['id']}/", headers=user.auth)
    assert after.status_code == 200  # not deleted
    assert (after.get_json()["title"], after.get_json()["assigned_to"]) == ("Conditional", None)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("if_match", ['"2"', '"9", "2"', "*"])
def test_every_state_changing_route_proceeds_when_if_match_matches(client, user, route, if_match):
    task, _ = _stale(client, user)

    answer = _change(client, user, route, task["id"], {"If-Match": if_match})

    assert answer.status_code in (200, 204), answer.get_json()


@pytest.mark.parametrize("route", ROUTES)
def test_if_none_match_on_a_change(client, user, route):
    task, etag = _task(client, user)
    assert _change(client, user, route, task["id"], {"If-None-Match": etag}).status_code == 412
    assert _change(client, user, route, task["id"], {"If-None-Match": "*"}).status_code == 412
    assert _change(client, user, route, task["id"], {"If-None-Match": '"7"'}).status_code in (200, 204)


def test_get_with_a_matching_if_none_match_is_304(client, user):
    task, etag = _task(client, user)
    url = f"/api/tasks/{task['id']}/"

    for header in (etag, f"W/{etag}", f'"5", {etag}', "*"):
        answer = client.get(url, headers={**user.auth, "If-None-Match": header})
        assert answer.status_code == 304, header
        assert answer.headers["ETag"] == etag
        assert answer.get_data() == b""
    fresh = client.get(url, headers={**user.auth, "If-None-Match": '"5"'})
    assert fresh.status_code == 200 and fresh.get_json()["id"] == task["id"]


def test_a_task_the_caller_cannot_see_is_404_whatever_the_precondition(client, user, stack, new_name):
    task, etag = _task(client, user)
    stranger = stack.register_and_verify(new_name("stranger"))
    for route in ROUTES:
        answer = _change(client, stranger, route, task["id"], {"If-Match": '"999"'})
        assert answer.status_code == 404, route


# --- authentication first ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("delete", "/api/tasks/0.5/", {}),
        ("get", "/api/tasks/abc/", {}),
        ("get", "/api/tasks/?status=bogus&page_size=-1", {}),
        ("post", "/api/tasks/", {"data": "[[[", "content_type": "application/json"}),
        ("post", "/api/tasks/1/assign/", {"json": {}}),
        ("patch", "/api/users/profile/", {"json": {"nope": 1}}),
        ("get", "/api/logs/?event_type=%00", {}),
    ],
)
def test_without_a_valid_token_every_private_route_is_401_before_validation(client, method, path, kwargs):
    for headers in ({}, {"Authorization": "Bearer forged.token.value"}):
        answer = getattr(client, method)(path, headers=headers, **kwargs)
        assert answer.status_code == 401, (path, headers, answer.get_json())
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_with_a_token_the_same_request_is_validated(client, user):
    answer = client.delete("/api/tasks/0.5/", headers=user.auth)
    assert answer.status_code == 400
    assert "id" in answer.get_json()["errors"]


# --- update_mask (AIP-134) -------------------------------------------------------------


def test_update_mask_names_the_fields_that_change(client, user):
    task, _ = _task(client, user, description="keep me?", due_date="2030-01-01T00:00:00Z")
    url = f"/api/tasks/{task['id']}/"

    # Named and absent from the body: cleared. In the body but not named: left alone.
    masked = f"{url}?update_mask=description,due_date"
    answer = client.patch(masked, json={"title": "ignored"}, headers=user.auth)

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["title"], body["description"], body["due_date"]) == ("Conditional", "", None)
    due = {"due_date": "2031-01-01T00:00:00Z"}
    camel = client.patch(f"{url}?update_mask=dueDate", json=due, headers=user.auth)
    assert camel.get_json()["due_date"] == "2031-01-01T00:00:00Z"


def test_update_mask_star_replaces_the_task(client, user):
    task, _ = _task(client, user, description="old", priority="high")
    whole = {"title": "new", "description": "", "status": "done", "priority": "low", "due_date": None,
             "assigned_to": None}

    answer = client.patch(f"/api/tasks/{task['id']}/?update_mask=*", json=whole, headers=user.auth)

    assert answer.status_code == 200, answer.get_json()
    assert {key: answer.get_json()[key] for key in whole} == whole


@pytest.mark.parametrize("mask", ["bogus", "title,owner", "title.x", "*,title", "ti tle"])
def test_an_update_mask_naming_no_field_is_400(client, user, mask):
    task, _ = _task(client, user)

    url = f"/api/tasks/{task['id']}/?update_mask={mask}"
    answer = client.patch(url, json={"title": "x"}, headers=user.auth)

    assert answer.status_code == 400
    assert "update_mask" in answer.get_json()["errors"]
    assert client.get(f"/api/tasks/{task['id']}/", headers=user.auth).get_json()["title"] == "Conditional"


# --- REQUIRED fields ---------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}])
def test_assign_without_user_id_is_400_and_unassigns_nothing(client, user, body):
    task, _ = _task(client, user, assigned_to=user.user_id)

    answer = client.post(f"/api/tasks/{task['id']}/assign/", json=body, headers=user.auth)

    assert answer.status_code == 400
    assert "user_id" in answer.get_json()["errors"]
    after = client.get(f"/api/tasks/{task['id']}/", headers=user.auth).get_json()
    assert after["assigned_to"] == user.user_id


def test_assign_with_an_explicit_null_unassigns(client, user):
    task, _ = _task(client, user, assigned_to=user.user_id)

    answer = client.post(f"/api/tasks/{task['id']}/assign/", json={"user_id": None}, headers=user.auth)

    assert answer.status_code == 200
    assert answer.get_json()["assigned_to"] is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/token/revoke/", None),
        ("/api/token/revoke/", {}),
        ("/api/token/refresh/", {}),
        ("/api/users/verify_otp/", {"email": "someone@example.com"}),
        ("/api/tasks/", {}),
    ],
)
def test_a_missing_required_field_is_400(client, user, path, body):
    answer = client.post(path, json=body, headers=user.auth)

    assert answer.status_code == 400, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json().get("errors"), answer.get_json()
