"""Resolvers of the signed-in creator's webhook endpoints (domain/webhooks.py)."""

from __future__ import annotations

import strawberry

from domain import webhooks
from domain.errors import DomainError
from domain.webhooks import WebhookPorts
from resolvers.context import Context, Info
from schema.webhooks import WebhookEndpoint


def _ports(ctx: Context) -> WebhookPorts:
    # Services.webhooks, wired in main.open_runtime (None or absent: not offered).
    ports = getattr(ctx.services, "webhooks", None)
    if not isinstance(ports, WebhookPorts):
        raise DomainError("webhooks are not configured on this server")
    return ports


async def register_webhook_endpoint(info: Info, url: str) -> WebhookEndpoint:
    ctx = info.context
    endpoint = await webhooks.register_endpoint(_ports(ctx), ctx.user(), url)
    return WebhookEndpoint.from_domain(endpoint, show_secret=True)


async def webhook_endpoints(info: Info) -> list[WebhookEndpoint]:
    ctx = info.context
    found = await webhooks.list_endpoints(_ports(ctx), ctx.user())
    return [WebhookEndpoint.from_domain(e) for e in found]


async def delete_webhook_endpoint(info: Info, id: strawberry.ID) -> bool:
    ctx = info.context
    return await webhooks.delete_endpoint(_ports(ctx), ctx.user(), str(id))
