"""Project labels through the edge (REST): the owner creates labels, a member tags a
task, the list's `label` filter (repeated: all of them), a label of another project is
refused (400), a viewer lists labels but cannot manage them (403), an outsider sees
none (404), and bad input is problem+json, never a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("e2e")


def test_an_owner_labels_a_member_tags_and_filters(stack, client, new_name) -> None:
    alice = stack.register_and_verify(new_name("alice"))
    bob = stack.register_and_verify(new_name("bob"))
    carol = stack.register_and_verify(new_name("carol"))
    dave = stack.register_and_verify(new_name("dave"))
    project = client.post("/api/projects/", json={"name": "Site"}, headers=alice.auth).get_json()
    other = client.post("/api/projects/", json={"name": "Other"}, headers=alice.auth).get_json()
    members = f"/api/projects/{project['id']}/members/"
    client.post(members, json={"user_id": bob.user_id}, headers=alice.auth)
    client.post(members, json={"user_id": carol.user_id, "role": "viewer"}, headers=alice.auth)
    labels = f"/api/projects/{project['id']}/labels/"

    created = client.post(labels, json={"name": "Bug", "color": "#D73A4A"}, headers=alice.auth)
    assert created.status_code == 201, created.get_json()
    bug = created.get_json()
    assert (bug["name"], bug["color"], bug["project_id"]) == ("Bug", "#d73a4a", project["id"])
    ui = client.post(labels, json={"name": "ui", "color": "#00aa00"}, headers=alice.auth).get_json()
    taken = client.post(labels, json={"name": "BUG", "color": "#000000"}, headers=alice.auth)
    assert taken.status_code == 409 and taken.get_json()["code"] == "LABEL_EXISTS", taken.get_json()
    bad = client.post(labels, json={"name": "x", "color": "red"}, headers=alice.auth)
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"
    foreign = client.post(
        f"/api/projects/{other['id']}/labels/", json={"name": "bug", "color": "#000000"}, headers=alice.auth
    ).get_json()

    # Carol (viewer) lists them, may not manage them; Dave (outsider) sees no project.
    assert [label["name"] for label in client.get(labels, headers=carol.auth).get_json()["results"]] == [
        "Bug", "ui"
    ]
    assert client.post(labels, json={"name": "x", "color": "#000000"}, headers=carol.auth).status_code == 403
    assert client.delete(f"{labels}{bug['id']}/", headers=carol.auth).status_code == 403
    assert client.get(labels, headers=dave.auth).status_code == 404
    renamed = client.patch(f"{labels}{ui['id']}/", json={"color": "#0000FF"}, headers=alice.auth)
    assert renamed.status_code == 200 and renamed.get_json()["color"] == "#0000ff", renamed.get_json()
    assert renamed.get_json()["name"] == "ui"  # the fields in the body only

    # Bob (member) creates a task carrying both and another carrying one.
    both = client.post(
        "/api/tasks/",
        json={"title": "Fix the menu", "project_id": project["id"], "label_ids": [ui["id"], bug["id"]]},
        headers=bob.auth,
    )
    assert both.status_code == 201, both.get_json()
    assert both.get_json()["label_ids"] == sorted([bug["id"], ui["id"]])
    one = client.post(
        "/api/tasks/", json={"title": "Typo", "project_id": project["id"], "label_ids": [bug["id"]]},
        headers=bob.auth,
    ).get_json()
    refused = client.patch(f"/api/tasks/{one['id']}/", json={"label_ids": [foreign["id"]]}, headers=bob.auth)
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["code"] == "LABEL_NOT_IN_PROJECT"
    assert "label_ids" in refused.get_json()["errors"]

    def listed(query: str) -> list[int]:
        answer = client.get(f"/api/tasks/?{query}", headers=bob.auth)
        assert answer.status_code == 200, answer.get_json()
        return [task["id"] for task in answer.get_json()["results"]]

    assert listed(f"label={bug['id']}&label={ui['id']}") == [both.get_json()["id"]]
    assert listed(f"label={bug['id']}&ordering=created_at") == [both.get_json()["id"], one["id"]]
    assert listed(f"label={bug['id']}&label={foreign['id']}") == []
    assert client.get("/api/tasks/?label=abc", headers=bob.auth).status_code == 400
    assert client.get(f"/api/tasks/?label={bug['id']}", headers=dave.auth).get_json()["results"] == []

    # Bob takes the labels off; deleting a label takes it off its tasks.
    cleared = client.patch(
        f"/api/tasks/{one['id']}/?update_mask=label_ids", json={"label_ids": []}, headers=bob.auth
    )
    assert cleared.status_code == 200 and cleared.get_json()["label_ids"] == [], cleared.get_json()
    assert client.delete(f"{labels}{ui['id']}/", headers=alice.auth).status_code == 204
    seen = client.get(f"/api/tasks/{both.get_json()['id']}/", headers=carol.auth).get_json()
    assert seen["label_ids"] == [bug["id"]]
