"""Notification rules as tables: milestone crossings (no repeat after a dip), digest
texts, the rate-limit decision, dedupe keys and ids, what an event means."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import notifications as nt
from domain.events import INTEGRITY, REACTION, VIEW, EngagementEvent
from domain.notifications import Decision, NotificationKind, NotifyConfig, Preferences, Recent

K = NotificationKind
CONFIG = NotifyConfig()


@pytest.mark.parametrize(
    ("value", "mark", "expected"),
    [
        (0, 0, None),
        (9, 0, None),
        (10, 0, 10),
        (11, 10, None),
        (99, 10, None),
        (100, 10, 100),
        (150, 0, 100),  # a jump says the highest threshold only
        (9, 10, None),  # a dip below
        (10, 10, None),  # and a new crossing: nothing again
        (1_000, 100, 1_000),
        (999_999, 100_000, None),
        (10_000_000, 1_000_000, 10_000_000),
        (99_000_000, 10_000_000, None),
    ],
)
def test_next_milestone(value, mark, expected):
    assert nt.next_milestone(value, mark) == expected


def test_a_sequence_of_counts_notifies_each_threshold_once():
    mark, said = 0, []
    for value in [1, 5, 10, 12, 9, 10, 11, 99, 100, 98, 101, 2_000, 999, 1_000, 1_001]:
        t = nt.next_milestone(value, mark)
        if t is not None:
            said.append(t)
            mark = t
    assert said == [10, 100, 1_000]


@pytest.mark.parametrize(
    ("actors", "count", "folded", "text"),
    [
        (["alice"], 1, 0, "alice reacted to your video v1"),
        (["alice", "bob"], 2, 0, "alice and bob reacted to your video v1"),
        (["alice", "bob", "carol"], 3, 0, "alice, bob and carol reacted to your video v1"),
        (["alice", "bob"], 43, 0, "alice, bob and 41 others reacted to your video v1"),
        (["alice", "bob"], 4, 0, "alice, bob and 2 others reacted to your video v1"),
        (["alice"], 1, 1, "alice reacted to your video v1, and 1 more update"),
        (
            ["alice", "bob"],
            43,
            2,
            "alice, bob and 41 others reacted to your video v1, and 2 more updates",
        ),
        ([], 0, 2, "2 more updates about your video v1"),
    ],
)
def test_digest_text(actors, count, folded, text):
    named = nt.named_actors(actors, count)
    assert nt.digest_text(nt.content_label("VIDEO", "v1"), named, count, folded) == text


def test_named_actors_are_all_up_to_three_else_the_two_most_recent():
    assert nt.named_actors(["a", "b", "c"], 3) == ["a", "b", "c"]
    assert nt.named_actors(["a", "b", "c"], 43) == ["a", "b"]


@pytest.mark.parametrize(
    ("kind", "recent", "prefs", "expected"),
    [
        (K.MILESTONE, Recent(0, 0), Preferences("c"), Decision.SEND),
        (K.MILESTONE, Recent(2, 19), Preferences("c"), Decision.SEND),
        (K.MILESTONE, Recent(3, 3), Preferences("c"), Decision.FOLD),  # per content
        (K.FIRST_LIKE, Recent(0, 20), Preferences("c"), Decision.FOLD),  # in total
        (K.REACTIONS_DIGEST, Recent(3, 3), Preferences("c"), Decision.WAIT),
        (K.REACTIONS_DIGEST, Recent(0, 20), Preferences("c"), Decision.WAIT),
        (K.REACTIONS_DIGEST, Recent(0, 0), Preferences("c"), Decision.SEND),
        (K.MILESTONE, Recent(0, 0), Preferences("c", frozenset({K.MILESTONE})), Decision.DROP),
        (K.VIRAL, Recent(9, 99), Preferences("c", frozenset(), frozenset({"v1"})), Decision.DROP),
        (K.TRENDING, Recent(0, 0), Preferences("c", frozenset({K.MILESTONE})), Decision.SEND),
    ],
)
def test_rate_limit_decisions(kind, recent, prefs, expected):
    assert nt.decide(kind, prefs, "v1", recent, CONFIG) is expected


def test_dedupe_keys_and_ids():
    assert nt.milestone_key("v1", "likes", 100) == "milestone:v1:likes:100"
    assert nt.first_like_key("v1") == "first_like:v1"
    assert nt.digest_key("v1", 1234) == "digest:v1:1234"
    day = nt.DAY_MS
    assert (
        nt.viral_key("v1", 3 * day)
        == nt.viral_key("v1", 4 * day - 1)
        != nt.viral_key("v1", 4 * day)
    )
    assert nt.trending_key("v1", "HOUR", 5) != nt.trending_key("v1", "DAY", 5)
    a, b = nt.notification_id("milestone:v1:likes:100"), nt.notification_id("milestone:v1:likes:10")
    assert a == nt.notification_id("milestone:v1:likes:100") and a != b and len(a) == 20
    assert nt.seq_of(5, "x") < nt.seq_of(10, "a")  # sorts by time first


def test_a_notification_expires_after_its_ttl():
    at = datetime(2026, 11, 23, tzinfo=UTC)
    n = nt.make("first_like:v1", "c", "v1", K.FIRST_LIKE, {"actor": "a"}, "t", at, 86_400)
    assert (n.expires_at - at).total_seconds() == 86_400
    assert n.seq == f"{n.created_ms:014d}-{n.id}"


def ev(kind: str, deltas: dict[str, int], after: str | None = "LIKE") -> EngagementEvent:
    return EngagementEvent("e", kind, "v1", "u", 0, deltas, None, {"after": after})


@pytest.mark.parametrize(
    ("event", "public", "first_like", "check"),
    [
        (ev(REACTION, {"likes": 1, "r:LIKE": 1}), True, True, True),
        (ev(REACTION, {"x_likes": 1}), False, False, False),  # an excluded actor's like
        (ev(REACTION, {"r:LIKE": -1, "r:LOVE": 1}, "LOVE"), True, False, False),  # a switch
        (ev(REACTION, {"likes": -1, "r:LIKE": -1}, None), False, False, False),  # an unlike
        (ev(VIEW, {"views": 1}, None), False, False, True),
        (ev(INTEGRITY, {"likes": -1, "x_likes": 1}), False, False, False),  # an exclusion
        (ev(INTEGRITY, {"likes": 1, "x_likes": -1}), False, False, True),  # a restoration
    ],
)
def test_what_an_event_means(event, public, first_like, check):
    assert nt.public_reaction(event) is public
    assert nt.raises_likes(event) is first_like
    assert nt.raises_counts(event) is check


def test_trusted_counts_leave_out_the_doubtful_share():
    counters = {"likes": 12, "d_likes": 3, "x_likes": 50, "views": 100, "d_views": 1}
    assert nt.trusted_counts(counters) == {"likes": 9, "views": 99}


@pytest.mark.parametrize(
    ("n", "text"), [(10, "10"), (1_000, "1k"), (100_000, "100k"), (10_000_000, "10M")]
)
def test_compact_numbers(n, text):
    assert nt.compact(n) == text
