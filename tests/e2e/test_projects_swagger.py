"""Swagger UI's "Try it out" for the project operations: /swagger.json documents each
with its errors, and the example bodies it fills in succeed as they stand where nothing
else is needed (create, rename, archive), and otherwise are refused for what they are
(a user who does not exist, the last owner), never as a broken rule of the contract."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("e2e")


def test_project_examples_succeed_or_are_refused_for_what_they_are(client, user) -> None:
    document = client.get("/swagger.json").get_json()
    schemas = document["components"]["schemas"]

    def example(path: str, verb: str) -> dict:
        ref = document["paths"][path][verb]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]["example"]

    created = client.post("/api/projects/", json=example("/api/projects/", "post"), headers=user.auth)
    assert created.status_code == 201, created.get_json()
    project = created.get_json()
    renamed = client.patch(
        f"/api/projects/{project['id']}/", json=example("/api/projects/{id}/", "patch"), headers=user.auth
    )
    assert renamed.status_code == 200, renamed.get_json()
    archived = client.post(
        f"/api/projects/{project['id']}/archive/",
        json=example("/api/projects/{id}/archive/", "post"),
        headers=user.auth,
    )
    assert archived.status_code == 200 and archived.get_json()["archived"] is True

    variables = {"{id}": project["id"], "{project_id}": project["id"], "{user_id}": user.user_id}
    for path, operations in document["paths"].items():
        if not path.startswith("/api/projects/"):
            continue
        for verb, operation in operations.items():
            statuses = set(operation["responses"])
            if path != "/api/projects/":
                assert "404" in statuses, (verb, path)
            if verb != "get":
                assert {"409", "412"} <= statuses or verb == "post" and path == "/api/projects/", (verb, path)
            if "requestBody" not in operation:
                continue
            url = path
            for variable, value in variables.items():
                url = url.replace(variable, str(value))
            answer = client.open(url, method=verb.upper(), json=example(path, verb), headers=user.auth)
            assert answer.status_code < 500, (verb, path, answer.get_json())
            if (verb, path) == ("post", "/api/projects/{project_id}/labels/"):
                assert answer.status_code == 201, answer.get_json()  # the label example as it stands
            assert answer.get_json().get("code") != "INVALID_ARGUMENT", (verb, path, answer.get_json())
