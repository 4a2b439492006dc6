import jwt
import pytest

from domain.errors import Unauthenticated
from resolvers.auth import TokenVerifier, issue_token

SECRET = "s" * 32


def test_valid_token_gives_actor_with_roles():
    actor = TokenVerifier(SECRET).actor_from_header(
        f"Bearer {issue_token(SECRET, 'alice', ['admin'])}"
    )
    assert actor is not None
    assert actor.user_id == "alice"
    assert actor.roles == frozenset({"admin"})


def test_no_header_is_anonymous():
    assert TokenVerifier(SECRET).actor_from_header(None) is None


@pytest.mark.parametrize(
    "header",
    [
        "Basic abc",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer " + issue_token("another-secret-of-enough-length!", "alice"),
        "Bearer " + issue_token(SECRET, "alice", ttl_s=-3600),
        "Bearer " + jwt.encode({"roles": []}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": "a"}, SECRET, algorithm="HS512"),
    ],
    ids=["scheme", "empty", "garbage", "wrong-secret", "expired", "no-sub", "other-alg"],
)
def test_bad_tokens_are_refused(header):
    with pytest.raises(Unauthenticated):
        TokenVerifier(SECRET).actor_from_header(header)


def test_a_cached_token_still_expires(monkeypatch):
    import time as real_time

    verifier = TokenVerifier(SECRET, leeway_s=0)
    token = issue_token(SECRET, "alice", ttl_s=60)
    assert verifier.actor_from_token(token).user_id == "alice"
    assert verifier.actor_from_token(token).user_id == "alice"  # from the cache
    later = real_time.time() + 120
    monkeypatch.setattr("resolvers.auth.time.time", lambda: later)
    reverified = []

    def verify(t):
        reverified.append(t)
        raise Unauthenticated("token has expired")

    monkeypatch.setattr(verifier, "_verify", verify)
    with pytest.raises(Unauthenticated):
        verifier.actor_from_token(token)
    assert reverified == [token]  # past its expiry the cache no longer vouches for it


def test_only_verified_tokens_are_cached():
    verifier = TokenVerifier(SECRET)
    bad = issue_token("another-secret-of-enough-length!", "alice")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.actor_from_token(bad)


def test_cache_is_bounded():
    verifier = TokenVerifier(SECRET, cache_size=3)
    for i in range(10):
        verifier.actor_from_token(issue_token(SECRET, f"u{i}"))
    assert len(verifier._verified) == 3
