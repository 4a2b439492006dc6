"""The dev token route's body rules (transport.dev_token.parse_claims)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import BadUserInput
from transport.dev_token import MAX_ROLES, parse_claims


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"userId": "alice"}, ("alice", [])),
        ({"userId": "alice", "roles": None}, ("alice", [])),
        ({"userId": "svc", "roles": ["service"]}, ("svc", ["service"])),
        ({"userId": "a" * 128, "roles": ["r"] * MAX_ROLES}, ("a" * 128, ["r"] * MAX_ROLES)),
    ],
)
def test_accepted(body: Any, expected: tuple[str, list[str]]) -> None:
    assert parse_claims(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "alice",
        {},
        {"userId": ""},
        {"userId": "   "},
        {"userId": 7},
        {"userId": "a" * 129},
        {"userId": "al\nice"},
        {"userId": "alice", "roles": "admin"},
        {"userId": "alice", "roles": [""]},
        {"userId": "alice", "roles": [1]},
        {"userId": "alice", "roles": ["r"] * (MAX_ROLES + 1)},
    ],
)
def test_refused(body: Any) -> None:
    with pytest.raises(BadUserInput):
        parse_claims(body)
