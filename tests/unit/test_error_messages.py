"""Suggestions are cut from messages when introspection is off; nothing else is."""

from __future__ import annotations

import pytest

from schema.errors import without_suggestions


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Cannot query field 'likess' on type 'EngagementSummary'. Did you mean 'likes'?",
            "Cannot query field 'likess' on type 'EngagementSummary'.",
        ),
        (
            "Value 'LOVES' does not exist in 'ReactionType' enum. "
            "Did you mean the enum value 'LOVE'?",
            "Value 'LOVES' does not exist in 'ReactionType' enum.",
        ),
        (
            "Expected value of type 'LikeInput' not to include unknown field 'reactoin'. "
            "Did you mean 'reaction'? Found: {'contentId': 'x'}.",
            "Expected value of type 'LikeInput' not to include unknown field 'reactoin'. "
            "Found: {'contentId': 'x'}.",
        ),
        (
            "Unknown argument 'firts'. Did you mean 'first', 'after', or 'reaction'?",
            "Unknown argument 'firts'.",
        ),
        ("contentId must be a non-empty string", "contentId must be a non-empty string"),
        ("Why? Because.", "Why? Because."),
    ],
)
def test_without_suggestions(message: str, expected: str) -> None:
    assert without_suggestions(message) == expected
