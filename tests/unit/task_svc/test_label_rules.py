"""Label rules without I/O: caseless name keys (Unicode 15 section 3.13, D145), the
checks of names and colours, and the update mask."""

from __future__ import annotations

import unicodedata

import pytest

from common.errors import DomainError, PermissionDenied
from task_svc.labels import check_values, mask_fields, name_key
from task_svc.memberships import Action, Role, check_allowed


@pytest.mark.parametrize(("one", "other"), [
    ("bug", "BUG"),
    ("Straße", "STRASSE"),  # full case folding: lower() would keep them apart
    ("ǅ", "ǆ"),  # a title-case letter
    (unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "café")),
    ("Ωmega", "ωMEGA"),
])
def test_caseless_names_are_one(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


@pytest.mark.parametrize(("one", "other"), [("bug", "bugs"), ("bug", "bug "), ("cafe", "café")])
def test_different_names_stay_apart(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


@pytest.mark.parametrize("color", ["#000000", "#d73a4a", "#D73A4A", "#aBcDeF"])
def test_colours_as_rrggbb_pass(color: str) -> None:
    check_values({"name": "bug", "color": color})


@pytest.mark.parametrize(("values", "field"), [
    ({"color": "#fff"}, "color"),
    ({"color": "d73a4a"}, "color"),
    ({"color": "#d73a4a\n"}, "color"),  # fullmatch: no trailing newline slips through $
    ({"color": "#d73a4g"}, "color"),
    ({"color": "rgb(0,0,0)"}, "color"),
    ({"name": ""}, "name"),
    ({"name": "  "}, "name"),
    ({"name": "x" * 51}, "name"),
    ({"name": "a\x00b"}, "name"),
])
def test_bad_values_are_field_errors(values: dict, field: str) -> None:
    with pytest.raises(DomainError) as error:
        check_values(values)
    assert field in error.value.fields


def test_the_update_mask() -> None:
    assert mask_fields(["*"]) == ("name", "color")
    assert mask_fields(["color", "id", "color"]) == ("color",)
    with pytest.raises(DomainError):
        mask_fields(["project_id", "title"][1:])


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_only_owners_manage_labels(role: Role) -> None:
    check_allowed(1, Role.OWNER, Action.MANAGE_LABELS)
    check_allowed(1, role, Action.READ)  # listing labels
    with pytest.raises(PermissionDenied):
        check_allowed(1, role, Action.MANAGE_LABELS)
