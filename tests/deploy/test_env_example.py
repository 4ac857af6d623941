""".env.example documents every setting once, with its real default."""

from __future__ import annotations

import re

from pydantic import SecretStr

from tests.deploy.manifests import REPO, SETTINGS_FIELDS, settings_from

# "# NAME=value" (commented: the default applies) or "NAME=value".
ENTRY = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$")


def entries() -> list[tuple[str, str]]:
    lines = (REPO / ".env.example").read_text().splitlines()
    # Indented lines ("#   NAME=...") are examples inside a description, not entries.
    return [(match[1], match[2]) for line in lines if (match := ENTRY.match(line))]


def test_lists_every_setting_exactly_once() -> None:
    names = [name for name, _ in entries()]
    assert sorted(set(names)) == sorted(names), "listed twice"
    assert set(names) == set(SETTINGS_FIELDS)


def test_shows_the_real_defaults() -> None:
    defaults = settings_from({})
    shown = {name: value for name, value in entries() if value}
    from_example = settings_from(shown)
    for name, value in entries():
        field = SETTINGS_FIELDS[name]
        if value:
            assert getattr(from_example, field) == getattr(defaults, field), f"{name}: default is not {value}"
        else:  # shown empty: the default is "unset"
            default = getattr(defaults, field)
            assert not (default.get_secret_value() if isinstance(default, SecretStr) else default), name
