import pytest

from domain.reactions import ReactionType as R
from domain.reactions import transition

# (before, wanted, changed, deltas): every transition between states.
TABLE = [
    (None, None, False, {}),
    (None, R.LIKE, True, {"r:LIKE": 1, "likes": 1}),
    (None, R.ANGRY, True, {"r:ANGRY": 1, "likes": 1}),
    (R.LIKE, R.LIKE, False, {}),
    (R.LIKE, R.LOVE, True, {"r:LIKE": -1, "r:LOVE": 1}),
    (R.SAD, R.WOW, True, {"r:SAD": -1, "r:WOW": 1}),
    (R.LIKE, None, True, {"r:LIKE": -1, "likes": -1}),
    (R.LAUGH, None, True, {"r:LAUGH": -1, "likes": -1}),
]


@pytest.mark.parametrize(("before", "wanted", "changed", "deltas"), TABLE)
def test_transition(before, wanted, changed, deltas):
    t = transition(before, wanted)
    assert t.changed is changed
    assert t.deltas == deltas
    assert (t.before, t.after) == (before, wanted)


@pytest.mark.parametrize("before", [None, *R])
@pytest.mark.parametrize("wanted", [None, *R])
def test_every_pair_keeps_likes_equal_to_active_reactions(before, wanted):
    t = transition(before, wanted)
    type_sum = sum(v for k, v in t.deltas.items() if k.startswith("r:"))
    assert t.deltas.get("likes", 0) == type_sum
    assert t.changed is (before != wanted)
