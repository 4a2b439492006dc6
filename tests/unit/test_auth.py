import time

import jwt
import pytest

import main
from domain.errors import Unauthenticated
from resolvers.auth import (
    DEFAULT_MAX_LIFETIME_S,
    DEFAULT_TTL_S,
    MAX_HEADER_CHARS,
    TokenVerifier,
    check_lifetime,
    issue_token,
)

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


# --- hostile claims and headers (issue 9, item 5) -----------------------------------

DAY = 24 * 3600


def signed(claims: dict) -> str:
    return jwt.encode(claims, SECRET, algorithm="HS256")


def fresh(**claims) -> dict:
    """Claims of a token issued now for an hour, with overrides (None removes one)."""
    now = int(time.time())
    base = {"sub": "alice", "iat": now, "exp": now + 3600}
    base.update(claims)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        pytest.param(fresh(exp=None), "exp", id="no-exp"),
        pytest.param(fresh(exp=None, iat=None), "exp", id="no-exp-no-iat"),
        pytest.param(fresh(exp=int(time.time()) + 31 * DAY), "lifetime", id="31-days-from-iat"),
        pytest.param(
            fresh(iat=int(time.time()) - 60 * DAY, exp=int(time.time()) + DAY),
            "lifetime",
            id="61-days-issued-long-ago",
        ),
        pytest.param(
            fresh(iat=None, exp=int(time.time()) + 31 * DAY), "lifetime", id="31-days-no-iat"
        ),
        pytest.param(fresh(exp=1e300), "lifetime", id="exp-1e300"),
        pytest.param(fresh(sub="x" * 129), "at most 128", id="sub-129"),
        pytest.param(fresh(sub="x" * 10_000), "at most 128", id="sub-10KB"),
        pytest.param(fresh(sub="al\x00ice"), "control", id="sub-NUL"),
        pytest.param(fresh(sub="al\nice"), "control", id="sub-newline"),
        pytest.param(fresh(sub="a\x85b"), "control", id="sub-C1"),
        pytest.param(fresh(sub="   "), "non-empty", id="sub-spaces"),
        pytest.param(fresh(sub=""), "non-empty", id="sub-empty"),
        pytest.param(fresh(sub=12345), "string", id="sub-int"),
        pytest.param(fresh(sub=["alice"]), "string", id="sub-list"),
        pytest.param(fresh(roles="admin"), "roles", id="roles-string"),
        pytest.param(fresh(roles={"admin": True}), "roles", id="roles-object"),
        pytest.param(fresh(roles=[f"r{i}" for i in range(33)]), "at most 32", id="roles-33"),
        pytest.param(fresh(roles=["admin", 1]), "roles\\[1\\]", id="role-int"),
        pytest.param(fresh(roles=[None]), "roles\\[0\\]", id="role-null"),
        pytest.param(fresh(roles=["a\x00"]), "control", id="role-NUL"),
        pytest.param(fresh(roles=["r" * 129]), "at most 128", id="role-129"),
        pytest.param(fresh(roles=[" "]), "non-empty", id="role-blank"),
    ],
)
def test_hostile_claims_are_unauthenticated(claims, message):
    with pytest.raises(Unauthenticated, match=message):
        TokenVerifier(SECRET, max_header_chars=10**6).actor_from_token(signed(claims))


@pytest.mark.parametrize(
    ("claims", "user", "roles"),
    [
        pytest.param(fresh(), "alice", set(), id="plain"),
        pytest.param(fresh(roles=None), "alice", set(), id="roles-absent"),
        pytest.param(
            fresh(roles=[f"r{i}" for i in range(32)]),
            "alice",
            {f"r{i}" for i in range(32)},
            id="32-roles",
        ),
        pytest.param(fresh(sub="x" * 128), "x" * 128, set(), id="sub-128"),
        pytest.param(fresh(sub=" padded "), " padded ", set(), id="sub-with-spaces"),
        pytest.param(fresh(sub="émilie-😀"), "émilie-😀", set(), id="sub-unicode"),
        pytest.param(fresh(exp=int(time.time()) + 30 * DAY), "alice", set(), id="exactly-30-days"),
        pytest.param(
            fresh(iat=None, exp=int(time.time()) + 29 * DAY), "alice", set(), id="29-days-no-iat"
        ),
    ],
)
def test_acceptable_claims(claims, user, roles):
    actor = TokenVerifier(SECRET).actor_from_token(signed(claims))
    assert (actor.user_id, actor.roles) == (user, frozenset(roles))


@pytest.mark.parametrize(
    ("claims", "now", "cap", "expected"),
    [
        ({}, 1000.0, 100, float("inf")),
        ({"exp": 1100}, 1000.0, 100, 1100.0),
        ({"exp": 1101}, 1000.0, 100, None),
        ({"exp": 1100, "iat": 1000}, 1050.0, 100, 1100.0),
        ({"exp": 1101, "iat": 1000}, 1090.0, 100, None),  # 11 s left, but 101 s long
        ({"exp": 1100.5, "iat": 1000}, 1000.0, 100, None),
    ],
)
def test_check_lifetime(claims, now, cap, expected):
    if expected is None:
        with pytest.raises(Unauthenticated, match="lifetime"):
            check_lifetime(claims, now, cap)
    else:
        assert check_lifetime(claims, now, cap) == expected


def test_exp_can_be_relaxed():
    verifier = TokenVerifier(SECRET, require_exp=False)
    actor = verifier.actor_from_token(signed(fresh(exp=None)))
    assert actor.user_id == "alice"
    # Relaxed means optional, not unchecked: an exp that is there still counts.
    with pytest.raises(Unauthenticated):
        verifier.actor_from_token(signed(fresh(exp=int(time.time()) + 31 * DAY)))


def test_the_lifetime_cap_is_a_setting():
    token = issue_token(SECRET, "alice", ttl_s=2 * DAY)
    with pytest.raises(Unauthenticated, match="lifetime"):
        TokenVerifier(SECRET, max_lifetime_s=DAY).actor_from_token(token)
    assert TokenVerifier(SECRET, max_lifetime_s=3 * DAY).actor_from_token(token).user_id == "alice"


@pytest.mark.parametrize(
    "header",
    [12345, 1.5, True, ["Bearer x"], {"token": "x"}, b"Bearer x"],
    ids=["int", "float", "bool", "list", "object", "bytes"],
)
def test_a_header_that_is_not_a_string_is_unauthenticated(header):
    with pytest.raises(Unauthenticated, match="must be a string"):
        TokenVerifier(SECRET).actor_from_header(header)


@pytest.mark.parametrize("size", [8193, 64 * 1024, 1024 * 1024])
def test_a_huge_header_is_refused_without_decoding(monkeypatch, size):
    def no_decoding(*args, **kwargs):
        raise AssertionError("a huge token reached jwt.decode")

    monkeypatch.setattr("resolvers.auth.jwt.decode", no_decoding)
    header = "Bearer " + "a" * (size - len("Bearer "))
    with pytest.raises(Unauthenticated, match="longer than 8192"):
        TokenVerifier(SECRET).actor_from_header(header)


def test_a_header_at_the_limit_is_decoded():
    token = signed(fresh())
    header = "Bearer " + token + " " * (MAX_HEADER_CHARS - len(token) - len("Bearer "))
    assert len(header) == MAX_HEADER_CHARS
    assert TokenVerifier(SECRET).actor_from_header(header) is not None


def test_refused_tokens_never_grow_the_cache():
    verifier = TokenVerifier(SECRET)
    for claims in (fresh(exp=None), fresh(sub="\x00"), fresh(roles=1)):
        with pytest.raises(Unauthenticated):
            verifier.actor_from_token(signed(claims))
    with pytest.raises(Unauthenticated):
        verifier.actor_from_header("Bearer " + "a" * 100_000)
    assert verifier._verified == {}


def test_cli_token_is_accepted_with_the_default_settings(monkeypatch, capsys):
    for name in ("JWT_SECRET", "JWT_REQUIRE_EXP", "JWT_MAX_LIFETIME_S"):
        monkeypatch.delenv(name, raising=False)
    assert DEFAULT_TTL_S <= DEFAULT_MAX_LIFETIME_S
    assert main.main(["token", "--sub", "alice", "--role", "service"]) == 0
    token = capsys.readouterr().out.strip()
    settings = main.Settings()
    verifier = TokenVerifier(
        settings.secret,
        require_exp=settings.jwt_require_exp,
        max_lifetime_s=settings.jwt_max_lifetime_s,
    )
    actor = verifier.actor_from_token(token)
    assert (actor.user_id, actor.roles) == ("alice", frozenset({"service"}))


@pytest.mark.parametrize("ttl", ["0", "-5", str(DEFAULT_MAX_LIFETIME_S + 1)])
def test_cli_refuses_a_ttl_the_server_would_refuse(monkeypatch, capsys, ttl):
    monkeypatch.delenv("JWT_MAX_LIFETIME_S", raising=False)
    with pytest.raises(SystemExit) as exited:
        main.main(["token", "--sub", "alice", "--ttl", ttl])
    assert exited.value.code == 2
    assert "JWT_MAX_LIFETIME_S" in capsys.readouterr().err


# --- rotation: JWT_PREVIOUS_SECRETS (issue 15, Deployment) --------------------------

NEW = "n" * 32
OLD = "o" * 32
OLDER = "p" * 32


def test_a_token_signed_with_a_previous_secret_verifies():
    verifier = TokenVerifier(NEW, previous_secrets=[OLD, OLDER])
    for secret in (NEW, OLD, OLDER):
        actor = verifier.actor_from_token(issue_token(secret, "alice", ["admin"]))
        assert (actor.user_id, actor.roles) == ("alice", frozenset({"admin"}))


def test_a_token_signed_with_an_unknown_secret_does_not():
    verifier = TokenVerifier(NEW, previous_secrets=[OLD])
    with pytest.raises(Unauthenticated, match="invalid token"):
        verifier.actor_from_token(issue_token("u" * 32, "alice"))
    assert verifier._verified == {}


def test_without_previous_secrets_an_old_token_is_refused():
    with pytest.raises(Unauthenticated):
        TokenVerifier(NEW).actor_from_token(issue_token(OLD, "alice"))


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        pytest.param(fresh(exp=int(time.time()) - 3600), "expired", id="expired"),
        pytest.param(fresh(exp=None), "exp", id="no-exp"),
        pytest.param(fresh(exp=int(time.time()) + 31 * DAY), "lifetime", id="too-long"),
        pytest.param(fresh(sub=""), "non-empty", id="bad-sub"),
    ],
)
def test_a_previous_secret_checks_the_claims_all_the_same(claims, message):
    # The signature matched the previous secret: the claims decide, with the same message.
    token = jwt.encode(claims, OLD, algorithm="HS256")
    with pytest.raises(Unauthenticated, match=message):
        TokenVerifier(NEW, previous_secrets=[OLD]).actor_from_token(token)


def test_the_current_secret_is_tried_first(monkeypatch):
    tried = []
    real_decode = jwt.decode

    def decode(token, key, **kwargs):
        tried.append(key)
        return real_decode(token, key, **kwargs)

    monkeypatch.setattr("resolvers.auth.jwt.decode", decode)
    # The current secret repeated among the previous ones is tried once.
    verifier = TokenVerifier(NEW, previous_secrets=[OLD, NEW, OLD])
    verifier.actor_from_token(issue_token(NEW, "alice"))
    assert tried == [NEW]
    tried.clear()
    with pytest.raises(Unauthenticated):
        verifier.actor_from_token(issue_token("u" * 32, "bob"))
    assert tried == [NEW, OLD]


def test_the_setting_is_comma_separated_and_needs_jwt_secret(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", NEW)
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", f" {OLD} ,, {OLDER}")
    assert main.Settings().jwt_previous_secrets == [OLD, OLDER]
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", "")
    assert main.Settings().jwt_previous_secrets == []
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", OLD)
    with pytest.raises(ValueError, match="JWT_PREVIOUS_SECRETS is set but JWT_SECRET"):
        main.Settings()


def test_new_tokens_are_signed_with_the_current_secret(monkeypatch, capsys):
    monkeypatch.setenv("JWT_SECRET", NEW)
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", OLD)
    assert main.main(["token", "--sub", "alice"]) == 0
    token = capsys.readouterr().out.strip()
    assert TokenVerifier(NEW).actor_from_token(token).user_id == "alice"
    with pytest.raises(Unauthenticated):
        TokenVerifier(OLD).actor_from_token(token)


async def test_the_runtime_verifies_with_the_previous_secrets():
    settings = main.Settings(jwt_secret=NEW, jwt_previous_secrets=[OLD])
    async with main.open_runtime(settings) as runtime:
        tokens = runtime.services.tokens
        assert tokens.actor_from_token(issue_token(OLD, "alice")).user_id == "alice"
        assert tokens.actor_from_token(issue_token(NEW, "bob")).user_id == "bob"
        with pytest.raises(Unauthenticated):
            tokens.actor_from_token(issue_token(OLDER, "carol"))
