"""Webhook endpoints as GraphQL types (domain/webhooks.py, docs/WEBHOOKS.md)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.webhooks import Endpoint


@strawberry.type(
    description=(
        "Where the signed-in creator's notifications are POSTed (Standard Webhooks; "
        "docs/WEBHOOKS.md)."
    )
)
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    active: bool = strawberry.field(
        description="False once disabled (disabledReason says why); re-register to resume."
    )
    secret: str | None = strawberry.field(
        description=(
            "The signing secret ('whsec_...'): only in registerWebhookEndpoint's answer, "
            "null afterwards. Keep it: it cannot be shown again."
        )
    )
    disabled_reason: str | None
    consecutive_failures: int = strawberry.field(
        description="Failed attempts since the last success."
    )
    created_at: datetime

    @classmethod
    def from_domain(cls, e: Endpoint, *, show_secret: bool = False) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(e.endpoint_id),
            url=e.url,
            active=e.active,
            secret=e.secret if show_secret else None,
            disabled_reason=e.disabled_reason,
            consecutive_failures=e.consecutive_failures,
            created_at=e.created_at,
        )
