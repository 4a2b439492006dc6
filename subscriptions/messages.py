"""The live messages on pub/sub: their channels, their format, encode and decode.

Two kinds travel, both published by the aggregator and read by the live
subscription (resolvers/live.py):

* a content channel carries the counters of one content after a change, with
  the counters' version, so a subscriber can tell a newer snapshot from an
  older one (several workers may publish out of order, and a subscription
  reads the current state while messages are already on their way);
* a user channel says "the reactions of this user to these contents are
  about to change": a subscription of that user re-reads them, together with
  the counters, before it shows counts that include the change.

Channel names themselves are built in storage/keys.py, like every Redis name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import orjson

from domain.ports import CounterReading
from storage.keys import Keys


@dataclass(frozen=True, slots=True)
class LiveChannels:
    keys: Keys

    def content(self, content_id: str) -> str:
        return self.keys.channel(content_id)

    def user(self, user_id: str) -> str:
        return self.keys.user_channel(user_id)


@dataclass(frozen=True, slots=True)
class CountsMessage:
    content_id: str
    version: int
    counters: dict[str, int]
    unique_viewers: int


def encode_counts(content_id: str, reading: CounterReading) -> str:
    return orjson.dumps(
        {
            "c": content_id,
            "v": reading.version,
            "n": reading.counters,
            "u": reading.unique_viewers,
        }
    ).decode()


def decode_counts(message: str) -> CountsMessage:
    data = orjson.loads(message)
    # A message without a version (published before versions existed) is older
    # than anything a subscriber has read.
    return CountsMessage(data["c"], int(data.get("v", 0)), data["n"], int(data["u"]))


@lru_cache(maxsize=4096)
def counts_version(message: str) -> int:
    """The version of a counts message; every local subscriber of its channel
    asks about the same message, so it is decoded once."""
    return decode_counts(message).version


def encode_mine(content_ids: Iterable[str]) -> str:
    return orjson.dumps(sorted(set(content_ids))).decode()


def decode_mine(message: str) -> list[str]:
    ids = orjson.loads(message)
    return [str(cid) for cid in ids]
