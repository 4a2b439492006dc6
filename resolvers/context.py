"""The typed context every resolver receives."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from domain.deps import Deps
from domain.errors import Unauthenticated
from domain.identity import Actor, AddressHasher
from domain.ports import Outbox
from domain.rate_limits import RateLimiter
from domain.reads import MAX_BATCH, load_summaries
from domain.summary import Summary
from domain.webhooks import WebhookPorts
from resolvers.auth import TokenVerifier
from storage.keys import Keys
from subscriptions.hub import LiveHub
from transport.persisted_queries import PersistedQueries


@dataclass(slots=True)
class Services:
    """Built once per process in the lifespan; shared by all requests."""

    deps: Deps
    keys: Keys
    hub: LiveHub
    tokens: TokenVerifier
    # Every MongoDB outbox, for the outbox relay.
    outboxes: list[Outbox] = field(default_factory=list)
    # Automatic persisted queries (transport.persisted_queries); None: not offered.
    persisted_queries: PersistedQueries | None = None
    # Abuse limits (domain/rate_limits.py) and the client address's daily-salted hash
    # (domain/identity.py); None: no limits, no address in events.
    rate_limiter: RateLimiter | None = None
    addresses: AddressHasher | None = None
    # Creators' webhook endpoints (domain/webhooks.py); None: not offered.
    webhooks: WebhookPorts | None = None


class Loaders:
    """Per-request (per-operation for subscriptions) DataLoaders: a feed of N
    cards costs one counters round trip and one viewer-reactions query.

    Keyed by a tuple of content ids, not by one id: a 50-card feed is one key
    (one future) rather than fifty, while every field of an operation that
    asks for summaries (aliases, single and list fields) still shares one batch.
    """

    __slots__ = ("_actor", "_deps", "_summaries")

    def __init__(self, deps: Deps, actor: Actor | None) -> None:
        self._deps = deps
        self._actor = actor
        self._summaries: DataLoader[tuple[str, ...], list[Summary]] | None = None

    @property
    def summaries(self) -> DataLoader[tuple[str, ...], list[Summary]]:
        # Made on first use: most mutations never read a summary through it.
        if self._summaries is None:
            deps, actor = self._deps, self._actor

            async def load(groups: list[tuple[str, ...]]) -> list[list[Summary]]:
                wanted = list(dict.fromkeys(cid for group in groups for cid in group))
                # At most MAX_BATCH ids per read, as one field may ask: bounded scripts.
                chunks = [wanted[i : i + MAX_BATCH] for i in range(0, len(wanted), MAX_BATCH)]
                found = {
                    s.content_id: s
                    for part in await asyncio.gather(
                        *(load_summaries(deps, actor, chunk) for chunk in chunks)
                    )
                    for s in part
                }
                return [[found[cid] for cid in group] for group in groups]

            self._summaries = DataLoader(load)
        return self._summaries

    async def summary(self, content_id: str) -> Summary:
        (found,) = await self.summaries.load((content_id,))
        return found


@dataclass(slots=True)
class Context:
    services: Services
    actor: Actor | None
    loaders: Loaders
    request: Any = None
    response: Any = None
    # A token that was sent but failed verification. Every operation reports it
    # (UNAUTHENTICATED) rather than going on anonymously: a client with an expired
    # token learns to refresh it instead of silently seeing a logged-out view.
    auth_error: Unauthenticated | None = None
    connection_params: dict[str, Any] | None = None
    # ISO 3166-1 alpha-2 from a trusted proxy's header, for analytics (transport/region.py).
    region: str = "unknown"
    # The client's address as uvicorn resolved it (X-Forwarded-For only from
    # FORWARDED_ALLOW_IPS). Held for this request only: never stored, logged or
    # returned; events get client_address(), its daily-salted hash.
    client_host: str | None = None
    _client_address: str | None = None

    @property
    def deps(self) -> Deps:
        return self.services.deps

    def user(self) -> Actor | None:
        if self.actor is None and self.auth_error is not None:
            raise self.auth_error
        return self.actor

    async def client_address(self) -> str | None:
        """The client's address hashed with the day's salt (None when unknown)."""
        if self._client_address is None and self.client_host is not None:
            hasher = self.services.addresses
            if hasher is not None:
                self._client_address = await hasher.hash(self.client_host)
        return self._client_address

    def fresh_loaders(self) -> Loaders:
        return Loaders(self.services.deps, self.actor)


Info = StrawberryInfo[Context, None]
