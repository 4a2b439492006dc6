"""Bearer tokens (HS256 JWT): the only source of who the actor is."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

from domain.errors import Unauthenticated
from domain.identity import Actor

ALGORITHM = "HS256"


class TokenVerifier:
    def __init__(self, secret: str, leeway_s: int = 30, cache_size: int = 10_000) -> None:
        self._secret = secret
        self._leeway = leeway_s
        # A client sends the same token with many requests: its signature is checked
        # once, its expiry on every use. Only tokens that verified are kept.
        self._verified: dict[str, tuple[Actor, float]] = {}
        self._cache_size = cache_size

    def actor_from_header(self, header: str | None) -> Actor | None:
        """None when no token was sent; Unauthenticated when one was sent and is bad."""
        if header is None or not header.strip():
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
        actor, expires = self._verify(token)
        if len(self._verified) >= self._cache_size:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = (actor, expires)
        return actor

    def _verify(self, token: str) -> tuple[Actor, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                leeway=self._leeway,
                options={"require": ["sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        sub = claims.get("sub")
        roles = claims.get("roles") or []
        if not isinstance(sub, str) or not sub or not isinstance(roles, list):
            raise Unauthenticated("token claims must have a string 'sub' and a 'roles' list")
        exp = claims.get("exp")
        expires = float(exp) if isinstance(exp, int | float) else float("inf")
        return Actor(user_id=sub, roles=frozenset(str(r) for r in roles)), expires


def issue_token(
    secret: str, sub: str, roles: Sequence[str] = (), ttl_s: int = 7 * 24 * 3600
) -> str:
    now = int(time.time())
    claims = {"sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
