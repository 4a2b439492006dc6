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
