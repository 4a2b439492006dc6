"""The GraphQL endpoint: strawberry's ASGI view with our context, WebSocket
protocol checks, JSON errors for HTTP failures and the lean JSON POST path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from cross_web import HTTPException as StrawberryHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from domain.errors import Unauthenticated
from resolvers.context import Context, Loaders, Services
from resolvers.ws_protocol import BoundedCloseAdapter, TransportWSHandler
from schema.documents import DocumentPolicy
from schema.root import build_schema
from transport import http_post
from transport.graphiql import GraphiQLPage
from transport.persisted_queries import PersistedQueryError, PersistedQueryResolver
from transport.proxy_headers import direct_peer
from transport.region import UNKNOWN, IPNetwork, client_region
from transport.request_id import note_operation


class GraphQLApp(GraphQL):
    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = BoundedCloseAdapter

    def __init__(
        self,
        services: Services,
        policy: DocumentPolicy | None = None,
        *,
        fast_paths: bool = True,
        introspection: bool = True,
        graphiql: GraphiQLPage | None = None,
        region_header: str | None = None,
        trusted_proxies: Sequence[IPNetwork] = (),
        **kwargs: Any,
    ) -> None:
        # Only graphql-transport-ws: no client of ours speaks the legacy graphql-ws
        # protocol, and its handler would need the same hardening.
        kwargs.setdefault("subscription_protocols", (GRAPHQL_TRANSPORT_WS_PROTOCOL,))
        schema = build_schema(policy, fast_paths=fast_paths, introspection=introspection)
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None, **kwargs)
        self.services = services
        self._graphiql = graphiql
        self._region_header = region_header
        self._trusted_proxies = tuple(trusted_proxies)
        limit = (policy or DocumentPolicy()).cache_max_query_bytes
        self.persisted = PersistedQueryResolver(services.persisted_queries, schema.is_valid, limit)
        # The lean path leans on private parts of strawberry's view (see
        # transport.http_post): FAST_PATHS=false serves every request through the view.
        self._lean = fast_paths and http_post.serves(self)

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        actor, auth_error = None, None
        if not isinstance(request, WebSocket):
            try:
                actor = self.services.tokens.actor_from_header(request.headers.get("authorization"))
            except Unauthenticated as exc:
                auth_error = exc
        loaders = Loaders(self.services.deps, actor)
        # A WebSocket's is its upgrade request's: headers and peer are the same. The
        # client is what transport.proxy_headers resolved (X-Forwarded-For only from
        # FORWARDED_ALLOW_IPS); the region header is believed from the direct peer.
        peer = request.client.host if request.client is not None else None
        region = UNKNOWN
        if self._region_header is not None:
            region = client_region(
                request.headers, direct_peer(request), self._region_header, self._trusted_proxies
            )
        return Context(
            self.services,
            actor,
            loaders,
            request,
            response,
            auth_error,
            region=region,
            client_host=peer,
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return http_post.SubResponse()

    async def on_ws_connect(self, context: Context) -> Any:  # type: ignore[override]
        params = context.connection_params or {}
        # Whatever was sent, even 0 or [], is checked: only an absent key is anonymous.
        header = params.get("authorization", params.get("Authorization"))
        if header is None and context.request is not None:
            header = context.request.headers.get("authorization")
        try:
            context.actor = self.services.tokens.actor_from_header(header)
        except Unauthenticated as exc:
            raise ConnectionRejectionError() from exc
        context.loaders = Loaders(self.services.deps, context.actor)
        return await super().on_ws_connect(context)  # type: ignore[arg-type]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response: Response | None = None
            if self._lean and http_post.is_plain_json_post(scope):
                response = await http_post.answer(self, request, orjson.dumps)
            if response is None:
                response = await self.run(request)
        except PersistedQueryError as exc:
            response = JSONResponse(exc.body())
        except StrawberryHTTPException as exc:
            # Strawberry answers these (malformed JSON, no query, wrong method) in
            # plain text; clients get the same error shape as everywhere else.
            response = JSONResponse(
                {"errors": [{"message": exc.reason, "extensions": {"code": "BAD_REQUEST"}}]},
                status_code=exc.status_code,
            )
        await response(scope, receive, send)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        # Refused before execution (parse, validation, variables): the
        # GraphQL-over-HTTP spec says "data" is then absent, not null. Such errors
        # have no path; a field error that nulled the whole result has one.
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            response.pop("data", None)
        return response

    @property
    def graphql_ide_html(self) -> str:
        # Only asked for when graphql_ide is set, that is with a page.
        assert self._graphiql is not None
        return self._graphiql.html

    async def parse_http_body(self, request: Any) -> Any:
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            # The access line's operation (transport/request_id.py).
            note_operation(data.operation_name, data.extensions)
        if isinstance(data, GraphQLRequestData) and data.extensions:
            data.query = await self.persisted.query_for(data.query, data.extensions)
        return data

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            # Strawberry's view would fail on it with an AttributeError (a 500 and
            # a logged traceback); the request is the client's mistake.
            raise StrawberryHTTPException(400, "The GraphQL request must be a JSON object")
        return parsed

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # str, not bytes: bytes would make WebSocket frames binary.
        return orjson.dumps(data).decode()
