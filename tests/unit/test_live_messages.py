"""The live messages: what the aggregator encodes is what a subscription decodes."""

from __future__ import annotations

import orjson
import pytest

from domain.ports import CounterReading
from storage.keys import Keys
from subscriptions.messages import (
    CountsMessage,
    LiveChannels,
    decode_counts,
    decode_mine,
    encode_counts,
    encode_mine,
)


@pytest.mark.parametrize(
    ("content_id", "reading"),
    [
        ("v1", CounterReading({}, 0)),
        ("v1", CounterReading({"likes": 3, "r:LOVE": 2, "r:LIKE": 1}, 0, version=7)),
        ("ünï/çødé", CounterReading({"views": 10}, 4, version=1_764_000_000_123)),
        # Fields that are not part of the message stay out of it.
        ("v2", CounterReading({"likes": 1}, 0, frozenset({"e1"}), 5, 6, 8)),
    ],
)
def test_counts_round_trip(content_id: str, reading: CounterReading) -> None:
    decoded = decode_counts(encode_counts(content_id, reading))
    assert decoded == CountsMessage(
        content_id, reading.version, reading.counters, reading.unique_viewers
    )


def test_a_counts_message_without_a_version_is_older_than_any() -> None:
    legacy = orjson.dumps({"c": "v1", "n": {"likes": 1}, "u": 0}).decode()
    assert decode_counts(legacy).version == 0


@pytest.mark.parametrize(
    ("content_ids", "expected"),
    [([], []), (["b", "a"], ["a", "b"]), (["a", "a", "b"], ["a", "b"])],
)
def test_mine_round_trip(content_ids: list[str], expected: list[str]) -> None:
    assert decode_mine(encode_mine(content_ids)) == expected


def test_channels_are_the_names_keys_builds() -> None:
    keys = Keys("px", 4)
    channels = LiveChannels(keys)
    assert channels.content("v1") == keys.channel("v1") == "px:{pushes}:c:v1"
    assert channels.user("alice") == keys.user_channel("alice") == "px:{pushes}:u:alice"
