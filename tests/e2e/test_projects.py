"""A team shares a project through the edge, with real users, events and emails: two
people share it, one creates and assigns, the other sees and updates the status; a
viewer reads but cannot write; an outsider sees nothing (404). Members are added by
username and emailed; the assignee picker finds them by prefix."""

from __future__ import annotations

import pytest

from tests.support.local import wait_for

pytestmark = pytest.mark.xdist_group("e2e")


def test_two_people_share_a_project_a_viewer_reads_an_outsider_sees_nothing(stack, client, new_name) -> None:
    alice = stack.register_and_verify(new_name("alice"))
    bob = stack.register_and_verify(new_name("bob"))
    carol = stack.register_and_verify(new_name("carol"))
    dave = stack.register_and_verify(new_name("dave"))

    created = client.post("/api/projects/", json={"name": "Website relaunch"}, headers=alice.auth)
    assert created.status_code == 201, created.get_json()
    project = created.get_json()
    assert (project["my_role"], project["archived"]) == ("owner", False)
    assert created.headers["ETag"] == f'"{project["version"]}"'
    members = f"/api/projects/{project['id']}/members/"

    # The picker finds Bob by a prefix of his name, in any case; Alice adds him by name.
    found = client.get(f"/api/users/list_users/?q={bob.username[:-2].upper()}", headers=alice.auth).get_json()
    assert bob.user_id in [user["id"] for user in found["results"]]
    added = client.post(members, json={"username": bob.username}, headers=alice.auth)
    assert added.status_code == 201, added.get_json()
    assert (added.get_json()["user_id"], added.get_json()["role"]) == (bob.user_id, "member")
    assert (
        client.post(
            members, json={"user_id": carol.user_id, "role": "viewer"}, headers=alice.auth
        ).status_code
        == 201
    )
    wait_for(lambda: any("added to project" in mail["Subject"] for mail in stack.inbox.to(bob.email)))

    # Alice creates a task in the project and assigns it to Bob.
    task = client.post(
        "/api/tasks/", json={"title": "Pick the fonts", "project_id": project["id"]}, headers=alice.auth
    ).get_json()
    assigned = client.post(
        f"/api/tasks/{task['id']}/assign/", json={"user_id": bob.user_id}, headers=alice.auth
    )
    assert assigned.status_code == 200, assigned.get_json()

    # Bob sees it in his list (filtered by the project too) and moves it along.
    mine = client.get(f"/api/tasks/?project={project['id']}", headers=bob.auth).get_json()
    assert [entry["id"] for entry in mine["results"]] == [task["id"]]
    assert mine["results"][0]["project_id"] == project["id"]
    started = client.patch(f"/api/tasks/{task['id']}/", json={"status": "in_progress"}, headers=bob.auth)
    assert started.status_code == 200 and started.get_json()["status"] == "in_progress"

    # Carol, a viewer, reads the task and the members, and may write nothing.
    assert client.get(f"/api/tasks/{task['id']}/", headers=carol.auth).status_code == 200
    listed = client.get(members, headers=carol.auth).get_json()["results"]
    assert {m["user_id"]: m["role"] for m in listed} == {
        alice.user_id: "owner",
        bob.user_id: "member",
        carol.user_id: "viewer",
    }
    for answer in (
        client.patch(f"/api/tasks/{task['id']}/", json={"status": "done"}, headers=carol.auth),
        client.post("/api/tasks/", json={"title": "x", "project_id": project["id"]}, headers=carol.auth),
        client.post(members, json={"user_id": dave.user_id}, headers=carol.auth),
    ):
        assert answer.status_code == 403, answer.get_json()
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.get_json()["code"] == "PROJECT_ROLE_FORBIDS"

    # Dave, an outsider, sees nothing of it: 404, like what does not exist.
    for path in (f"/api/tasks/{task['id']}/", f"/api/projects/{project['id']}/", members):
        answer = client.get(path, headers=dave.auth)
        assert answer.status_code == 404, path
    assert client.get(f"/api/tasks/?project={project['id']}", headers=dave.auth).get_json()["results"] == []
    assert (
        client.patch(f"/api/tasks/{task['id']}/", json={"status": "done"}, headers=dave.auth).status_code
        == 404
    )

    # The last owner cannot leave (409), and a project holding tasks is not deleted (409).
    leave = client.delete(f"{members}{alice.user_id}/", headers=alice.auth)
    assert (leave.status_code, leave.get_json()["code"]) == (409, "LAST_OWNER")
    delete = client.delete(f"/api/projects/{project['id']}/", headers=alice.auth)
    assert (delete.status_code, delete.get_json()["code"]) == (409, "PROJECT_NOT_EMPTY")
    # Bob leaves: the task is out of his sight at once, and no longer his.
    assert client.delete(f"{members}{bob.user_id}/", headers=bob.auth).status_code == 204
    assert client.get(f"/api/tasks/{task['id']}/", headers=bob.auth).status_code == 404
    assert client.get(f"/api/tasks/{task['id']}/", headers=alice.auth).get_json()["assigned_to"] is None


def test_a_stale_if_match_on_a_project_is_412_and_a_bad_filter_400(stack, client, new_name) -> None:
    owner = stack.register_and_verify(new_name("owner"))
    project = client.post("/api/projects/", json={"name": "P"}, headers=owner.auth)
    etag = project.headers["ETag"]
    renamed = client.patch(
        f"/api/projects/{project.get_json()['id']}/",
        json={"name": "Q"},
        headers={**owner.auth, "If-Match": etag},
    )
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Q"
    stale = client.patch(
        f"/api/projects/{project.get_json()['id']}/",
        json={"name": "R"},
        headers={**owner.auth, "If-Match": etag},
    )
    assert stale.status_code == 412
    for bad in ("abc", "0", "-3"):
        answer = client.get(f"/api/tasks/?project={bad}", headers=owner.auth)
        assert answer.status_code == 400, bad
        assert answer.headers["Content-Type"].startswith("application/problem+json")
