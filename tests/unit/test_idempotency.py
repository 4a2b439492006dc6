"""Idempotency fingerprints are pinned: stored records outlive a deploy."""

from __future__ import annotations

import hashlib

import pytest

from domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from domain.idempotency import DONE, PENDING, IdempotencyRecord, fingerprint, in_use, replay
from domain.reactions import ReactionType as R

# A record stored by the previous release is compared with the fingerprint the new
# release computes. If the serialisation changes (keys, separators, key order, enum
# encoding), every retry across the deploy fails with IDEMPOTENCY_KEY_REUSED; change
# these digests only together with a migration of the stored records.
PINNED = [
    (
        "like",
        {"contentId": "c1", "reaction": R.LIKE},
        b'{"in":{"contentId":"c1","reaction":"LIKE"},"op":"like"}',
        "8e920a99fbcf642fa84ad10761f3833a55e9e9c32823c3fe5e940ab2076993f3",
    ),
    (
        "like",
        {"contentId": "c1", "reaction": R.WOW},
        b'{"in":{"contentId":"c1","reaction":"WOW"},"op":"like"}',
        "5737aab924a3f630bf4ec61373294a1dd2cc54dd0362b5ec85695f922f05b40a",
    ),
    (
        "unlike",
        {"contentId": "c1", "reaction": None},
        b'{"in":{"contentId":"c1","reaction":null},"op":"unlike"}',
        "3e3bac9c4efff5d6f24d4ff96958b1e809e356370eb690c346c7d9a5204851e8",
    ),
    (
        "like",
        {"reaction": R.LIKE, "contentId": "vidéo-1"},
        '{"in":{"contentId":"vidéo-1","reaction":"LIKE"},"op":"like"}'.encode(),
        "bce4cc5aabd538cb8392c4074ddd98d790eaa466a3342b07185ae91d0a5ca138",
    ),
]


@pytest.mark.parametrize(
    ("operation", "payload", "canonical", "digest"),
    PINNED,
    ids=["like", "wow", "unlike", "non-ascii-unsorted-input"],
)
def test_fingerprint_is_pinned(operation, payload, canonical, digest):
    assert fingerprint(operation, payload) == digest
    # The digest is SHA-256 of compact, key-sorted UTF-8 JSON; this says which
    # part of the format a failing digest comes from.
    assert hashlib.sha256(canonical).hexdigest() == digest


@pytest.mark.parametrize(
    ("record", "wanted"),
    [(IdempotencyRecord(DONE, "fp", {"x": 1}), "other"), (IdempotencyRecord(PENDING, "fp"), "x")],
    ids=["done", "pending"],
)
def test_reused_key_names_the_fix(record, wanted):
    with pytest.raises(IdempotencyKeyReused) as excinfo:
        replay(record, wanted)
    assert str(excinfo.value) == (
        "requestId was already used with different input; use a new requestId"
    )


def test_in_use_tells_the_client_to_retry():
    error = in_use()
    assert isinstance(error, IdempotencyKeyInUse)
    assert str(error) == "a request with this requestId is still being processed; retry shortly"
