"""Who is acting: derived from a verified token, never from a request body."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import Forbidden, Unauthenticated


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    roles: frozenset[str] = frozenset()


def require_user(actor: Actor | None) -> Actor:
    if actor is None:
        raise Unauthenticated("this operation needs a signed-in user: send a valid bearer token")
    return actor


def require_role(actor: Actor | None, *roles: str) -> Actor:
    actor = require_user(actor)
    if not actor.roles.intersection(roles):
        raise Forbidden(f"this operation needs one of the roles: {', '.join(roles)}")
    return actor
