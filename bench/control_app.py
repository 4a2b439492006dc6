"""The control: the product's own runtime and use cases behind bare Starlette routes.

Bench-only; the product never serves this. It builds what ``main.create_app`` builds
(``main.open_runtime`` with the same Settings, the same in-process workers when MongoDB
is in-process) and calls the same use case as each GraphQL operation of the bench
from a plain JSON POST, answering the same JSON (the bytes the GraphQL operation
returns, ``{"data": ...}``): ``set_reaction`` for like/unlike, ``load_summaries``
for a feed page, ``record_views`` for a view batch. The difference to the GraphQL
endpoint is the GraphQL layer (parse/validate/execute, strawberry's ASGI handling,
result shaping) and the HTTP middleware.

    uvicorn bench.control_app:create_control_app --factory
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
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
from domain.identity import Actor
from domain.likes import set_reaction
from domain.reactions import ReactionType
from domain.reads import check_ids, load_summaries
from domain.view_recording import record_views


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


# ViewInput's GraphQL names -> the use case's (what ViewInput.to_raw gives).
_VIEW_FIELDS = {
    "contentId": "content_id",
    "sessionId": "session_id",
    "deviceId": "device_id",
    "eventId": "event_id",
    "watchedMs": "watched_ms",
    "positionMs": "position_ms",
    "visibleFraction": "visible_fraction",
    "source": "source",
    "platform": "platform",
    "final": "final",
}


def _view_input(raw: dict[str, Any]) -> dict[str, Any]:
    return {_VIEW_FIELDS[k]: v for k, v in raw.items()}


UseCase = Callable[[Any, Actor | None, Any], Awaitable[Any]]


async def like(deps: Any, actor: Actor | None, body: Any) -> Any:
    wanted = ReactionType(body.get("reaction", "LIKE")) if body["op"] == "like" else None
    result = await set_reaction(deps, actor, str(body["contentId"]), wanted, body.get("requestId"))
    return result.to_dict()


async def feed(deps: Any, actor: Actor | None, body: Any) -> Any:
    # = query($ids) { engagementSummaries(contentIds: $ids)
    #       { contentId likes viewerReaction reactions { reaction count } } }
    found = await load_summaries(deps, actor, check_ids([str(c) for c in body["ids"]]))
    cards = [
        {
            "contentId": s.content_id,
            "likes": s.likes,
            "viewerReaction": s.viewer_reaction.value if s.viewer_reaction else None,
            "reactions": [{"reaction": r.value, "count": n} for r, n in s.reactions],
        }
        for s in found
    ]
    return {"data": {"engagementSummaries": cards}}


async def views(deps: Any, actor: Actor | None, body: Any) -> Any:
    # = mutation($in) { recordViews(inputs: $in)
    #       { contentId sessionId decision { counted rule reason } } }
    results = await record_views(deps, actor, [_view_input(raw) for raw in body["in"]])
    payloads = [
        {
            "contentId": r.content_id,
            "sessionId": r.session_id,
            "decision": {
                "counted": r.decision.counted,
                "rule": r.decision.rule,
                "reason": r.decision.reason,
            },
        }
        for r in results
    ]
    return {"data": {"recordViews": payloads}}


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

    def route(use: UseCase) -> Callable[[Request], Awaitable[Response]]:
        """A JSON POST endpoint: the actor from the token, the body decoded, the use
        case called, its answer encoded; a domain error is a 400."""

        async def endpoint(request: Request) -> Response:
            runtime = holder["runtime"]
            tokens = runtime.services.tokens
            try:
                actor = tokens.actor_from_header(request.headers.get("authorization"))
                answer = await use(runtime.deps, actor, orjson.loads(await request.body()))
            except DomainError as exc:
                return _json({"error": type(exc).__name__, "message": str(exc)}, 400)
            return _json(answer)

        return endpoint

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
            Route("/control/like", route(like), methods=["POST"]),
            Route("/control/feed", route(feed), methods=["POST"]),
            Route("/control/views", route(views), methods=["POST"]),
            Route("/control/register", register, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
