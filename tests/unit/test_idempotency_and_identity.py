import pytest

from domain.errors import BadUserInput, Forbidden, IdempotencyKeyReused, Unauthenticated
from domain.idempotency import DONE, PENDING, IdempotencyRecord, fingerprint, replay
from domain.identity import Actor, require_role, require_user
from domain.reads import check_ids, decode_cursor


def test_fingerprint_depends_on_operation_and_input_not_key_order():
    assert fingerprint("like", {"a": 1, "b": 2}) == fingerprint("like", {"b": 2, "a": 1})
    assert fingerprint("like", {"a": 1}) != fingerprint("unlike", {"a": 1})
    assert fingerprint("like", {"a": 1}) != fingerprint("like", {"a": 2})


@pytest.mark.parametrize(
    ("record", "wanted", "outcome"),
    [
        (IdempotencyRecord(DONE, "fp", {"x": 1}), "fp", {"x": 1}),
        (IdempotencyRecord(PENDING, "fp"), "fp", None),
        (IdempotencyRecord(DONE, "fp", {"x": 1}), "other", IdempotencyKeyReused),
        (IdempotencyRecord(PENDING, "fp"), "other", IdempotencyKeyReused),
    ],
    ids=["done-replays", "pending-waits", "done-other-input", "pending-other-input"],
)
def test_replay(record, wanted, outcome):
    if isinstance(outcome, type):
        with pytest.raises(outcome):
            replay(record, wanted)
    else:
        assert replay(record, wanted) == outcome


@pytest.mark.parametrize(
    ("actor", "roles", "error"),
    [
        (None, ("service",), Unauthenticated),
        (Actor("u"), ("service",), Forbidden),
        (Actor("u", frozenset({"admin"})), ("service", "admin"), None),
    ],
)
def test_require_role(actor, roles, error):
    if error:
        with pytest.raises(error):
            require_role(actor, *roles)
    else:
        assert require_role(actor, *roles) is actor


def test_require_user():
    with pytest.raises(Unauthenticated):
        require_user(None)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["a"] * 101, "at most 100"),
        ([""], "non-empty"),
        (["  "], "non-empty"),
        (["x" * 129], "at most 128"),
        (["a\x00b"], "control"),
        (["a\nb"], "control"),
        (["a\x7fb"], "control"),
        (["a\x9fb"], "control"),
        ([5], "non-empty string"),
    ],
)
def test_check_ids_rejects(ids, message):
    with pytest.raises(BadUserInput, match=message):
        check_ids(ids)


def test_check_ids_accepts_limits():
    assert check_ids(["x" * 128] * 100) == ["x" * 128] * 100


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90LWEtY3Vyc29y"])
def test_bad_cursor(cursor):
    with pytest.raises(BadUserInput):
        decode_cursor(cursor)
