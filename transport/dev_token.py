"""POST /dev/token: bearer tokens for the reference app's demo sign-in.

Mounted only when JWT_SECRET is unset, i.e. when the server signs with the public
development secret that anyone can already sign with (`python main.py token`): the
route gives nothing away there, and does not exist where a real secret is set.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from domain.contents import check_id
from domain.errors import BadUserInput
from resolvers.auth import issue_token

ROUTE = "/dev/token"
MAX_ROLES = 32
# A demo session; well under JWT_MAX_LIFETIME_S's default.
TTL_S = 24 * 3600


def parse_claims(body: Any) -> tuple[str, list[str]]:
    """``{"userId": str, "roles": [str]?}`` to (sub, roles), by the token rules."""
    if not isinstance(body, dict):
        raise BadUserInput('the body must be a JSON object: {"userId": ..., "roles": [...]}')
    sub = check_id(body.get("userId"), "userId")
    roles = body.get("roles") or []
    if not isinstance(roles, list) or len(roles) > MAX_ROLES:
        raise BadUserInput(f"roles must be a list of at most {MAX_ROLES} ids")
    return sub, [check_id(r, "roles[]") for r in roles]


def endpoint(secret: str) -> Any:
    async def dev_token(request: Request) -> JSONResponse:
        try:
            sub, roles = parse_claims(orjson.loads(await request.body()))
        except (orjson.JSONDecodeError, BadUserInput) as exc:
            message = str(exc) if isinstance(exc, BadUserInput) else "the body is not JSON"
            return JSONResponse(
                {"error": {"code": "BAD_USER_INPUT", "message": message}}, status_code=400
            )
        token = issue_token(secret, sub, roles, TTL_S)
        return JSONResponse({"token": token, "userId": sub, "roles": roles, "expiresIn": TTL_S})

    return dev_token
