"""The control: the product's own runtime and like use case behind a bare Starlette route.

Bench-only; the product never serves this. It builds what ``main.create_app`` builds
(``main.open_runtime`` with the same Settings, the same in-process workers when MongoDB
is in-process) and calls ``domain.likes.set_reaction`` from a plain JSON POST, so the
difference to the GraphQL endpoint is the GraphQL layer (parse/validate/execute,
strawberry's ASGI handling, result shaping).

    uvicorn bench.control_app:create_control_app --factory
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import main
from domain.catalog import register_content
from domain.contents import ContentKind
from domain.errors import DomainError
from domain.likes import set_reaction
from domain.reactions import ReactionType


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def create_control_app() -> Starlette:
    settings = main.Settings()
    holder: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        main.configure_logging(settings)
        async with main.open_runtime(settings) as runtime:
            holder["runtime"] = runtime
            # The same in-process workers as the product's app.
            async with main.embedded_workers(runtime):
                yield

    async def healthz(_: Request) -> Response:
        return _json({"status": "ok"})

    async def like(request: Request) -> Response:
        runtime = holder["runtime"]
        try:
            actor = runtime.services.tokens.actor_from_header(request.headers.get("authorization"))
            body = orjson.loads(await request.body())
            wanted = ReactionType(body.get("reaction", "LIKE")) if body["op"] == "like" else None
            result = await set_reaction(
                runtime.deps, actor, str(body["contentId"]), wanted, body.get("requestId")
            )
        except DomainError as exc:
            return _json({"error": type(exc).__name__, "message": str(exc)}, 400)
        return _json(result.to_dict())

    async def register(request: Request) -> Response:
        runtime = holder["runtime"]
        actor = runtime.services.tokens.actor_from_header(request.headers.get("authorization"))
        items = orjson.loads(await request.body())
        for item in items:
            await register_content(
                runtime.deps,
                actor,
                item["contentId"],
                item["creatorId"],
                ContentKind(item["kind"]),
                item.get("durationMs"),
            )
        return _json({"registered": len(items)})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/control/like", like, methods=["POST"]),
            Route("/control/register", register, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
