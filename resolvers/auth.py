"""Bearer tokens (HS256 JWT): the only source of who the actor is.

A token verifies with the current secret (JWT_SECRET, which ``main.py token`` signs
with) or, during a rotation, with one of the previous ones (JWT_PREVIOUS_SECRETS,
verify only): README, Production, and docs/SECURITY.md, Tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jwt

from domain.contents import check_id
from domain.errors import BadUserInput, Unauthenticated
from domain.identity import Actor

ALGORITHM = "HS256"
DEFAULT_LEEWAY_S = 30
DEFAULT_MAX_LIFETIME_S = 30 * 24 * 3600
DEFAULT_TTL_S = 7 * 24 * 3600
# Our tokens are a few hundred characters; anything this long is refused before
# base64 or HMAC work is spent on it (a WebSocket connection_init can carry megabytes).
MAX_HEADER_CHARS = 8192
MAX_ROLES = 32


class TokenVerifier:
    def __init__(
        self,
        secret: str,
        leeway_s: int = DEFAULT_LEEWAY_S,
        cache_size: int = 10_000,
        *,
        require_exp: bool = True,
        max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
        max_header_chars: int = MAX_HEADER_CHARS,
        previous_secrets: Sequence[str] = (),
    ) -> None:
        # The current secret first: outside a rotation it is the only one tried, and
        # during one it is the one most tokens are signed with.
        self._secrets = [secret, *dict.fromkeys(s for s in previous_secrets if s != secret)]
        # Clock skew between the issuer and this process, for exp, nbf and iat.
        self._leeway = leeway_s
        self._require_exp = require_exp
        self._max_lifetime = max_lifetime_s
        self._max_header = max_header_chars
        # A client sends the same token with many requests: its signature is checked
        # once, its expiry on every use. Only tokens that verified are kept, so a
        # forger cannot fill it; its size bounds what our own issuer's tokens take.
        self._verified: dict[str, tuple[Actor, float]] = {}
        self._cache_size = cache_size

    def actor_from_header(self, header: object) -> Actor | None:
        """None when no token was sent; Unauthenticated when one was sent and is bad.

        ``header`` is typed ``object``: over WebSocket it comes from a client's JSON
        connection_init payload and may be a number, a list or anything else.
        """
        if header is None:
            return None
        if not isinstance(header, str):
            raise Unauthenticated("Authorization must be a string 'Bearer <token>'")
        if len(header) > self._max_header:
            raise Unauthenticated(f"Authorization is longer than {self._max_header} characters")
        if not header.strip():
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        return self.actor_from_token(token.strip())

    def actor_from_token(self, token: str) -> Actor:
        hit = self._verified.get(token)
        if hit is not None:
            actor, expires = hit
            if time.time() < expires + self._leeway:
                return actor
            del self._verified[token]
        if len(token) > self._max_header:
            raise Unauthenticated(f"token is longer than {self._max_header} characters")
        actor, expires = self._verify(token)
        if len(self._verified) >= self._cache_size:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = (actor, expires)
        return actor

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a token signed with any of the secrets. Only a signature that
        does not match moves on to the next secret: PyJWT checks the signature before
        the claims, so a token that is expired or lacks a claim is refused for that."""
        last = len(self._secrets) - 1
        for i, secret in enumerate(self._secrets):
            try:
                return jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],
                    leeway=self._leeway,
                    options={"require": ["sub", "exp"] if self._require_exp else ["sub"]},
                )
            except jwt.InvalidSignatureError:
                if i == last:
                    raise
        raise AssertionError("unreachable: the secrets are never empty")

    def _verify(self, token: str) -> tuple[Actor, float]:
        try:
            claims = self._decode(token)
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        expires = check_lifetime(claims, time.time(), self._max_lifetime)
        return actor_from_claims(claims), expires


def check_lifetime(claims: dict[str, Any], now: float, max_lifetime_s: float) -> float:
    """The expiry of verified ``claims`` (inf without exp), refused past the cap.

    The lifetime is exp - iat when the token says when it was issued (so a
    30-day cap refuses a 90-day token even on its last day), else exp - now.
    PyJWT has already checked that exp and iat are numbers, exp not past and
    iat not in the future.
    """
    exp = claims.get("exp")
    if exp is None:
        return float("inf")
    iat = claims.get("iat")
    start = float(iat) if iat is not None else now
    if float(exp) - start > max_lifetime_s:
        raise Unauthenticated(f"token lifetime exceeds {max_lifetime_s:.0f} s")
    return float(exp)


def actor_from_claims(claims: dict[str, Any]) -> Actor:
    """``sub`` follows the rules of every other id (domain.contents.check_id);
    ``roles`` is absent, null or a bounded list of such ids."""
    roles = claims.get("roles")
    if roles is None:
        roles = []
    if not isinstance(roles, list) or len(roles) > MAX_ROLES:
        raise Unauthenticated(f"token claim 'roles' must be a list of at most {MAX_ROLES}")
    try:
        sub = check_id(claims.get("sub"), "token claim 'sub'")
        checked = [check_id(r, f"token claim 'roles[{i}]'") for i, r in enumerate(roles)]
    except BadUserInput as exc:
        raise Unauthenticated(exc.message) from exc
    return Actor(user_id=sub, roles=frozenset(checked))


def issue_token(
    secret: str, sub: str, roles: Sequence[str] = (), ttl_s: int = DEFAULT_TTL_S
) -> str:
    now = int(time.time())
    claims = {"sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
