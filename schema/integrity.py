"""Count integrity as GraphQL types: what a count says about itself, and the admin
view of actors and decisions (domain/enforcement.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import strawberry

from domain import integrity
from domain.ports import ActorRecord, AuditEntry

strawberry.enum(integrity.Verdict, description="BOT and HUMAN override the score; AUTO follows it.")
strawberry.enum(
    integrity.Tier,
    name="TrustTier",
    description=(
        "TRUSTED counts; DOUBTFUL counts but not as trusted; EXCLUDED is out of public counts."
    ),
)


@strawberry.type(description="How trustworthy a count is.")
class CountIntegrity:
    suspect_likes: int = strawberry.field(
        description="Likes of excluded actors, kept out of the public count."
    )
    suspect_views: int = strawberry.field(
        description="Counted views of excluded actors, kept out of the public count."
    )
    trusted_share: float | None = strawberry.field(
        description=(
            "The share of the public likes and views from actors above the confidence "
            "bar; null when there are none."
        )
    )


@strawberry.type
class EvidenceItem:
    key: str
    value: str


def _evidence(evidence: Mapping[str, int | float | str]) -> list[EvidenceItem]:
    return [EvidenceItem(key=k, value=str(v)) for k, v in sorted(evidence.items())]


@strawberry.type
class ActorRisk:
    actor: strawberry.ID = strawberry.field(description="'u:<user id>' or 'd:<device id>'.")
    trust: float = strawberry.field(description="The automatic score: 1 trusted, 0 a bot.")
    tier: integrity.Tier
    verdict: integrity.Verdict
    reasons: list[str] = strawberry.field(description="The rules that lowered the score.")
    evidence: list[EvidenceItem]
    note: str | None
    updated_at: datetime | None

    @classmethod
    def from_domain(cls, r: ActorRecord) -> ActorRisk:
        return cls(
            actor=strawberry.ID(r.actor),
            trust=r.trust,
            tier=r.tier,
            verdict=integrity.Verdict(r.verdict),
            reasons=list(r.reasons),
            evidence=_evidence(r.evidence),
            note=r.note,
            updated_at=r.updated_at,
        )


@strawberry.type
class IntegrityCase:
    id: strawberry.ID
    actor: strawberry.ID
    rule: str = strawberry.field(
        description="The reasons that lowered the score (comma separated), or 'verdict'."
    )
    evidence: list[EvidenceItem]
    trust_before: float
    trust_after: float
    tier_before: integrity.Tier
    tier_after: integrity.Tier
    verdict: integrity.Verdict
    note: str | None
    by: str = strawberry.field(description="'integrity' (the worker) or the admin's user id.")
    at: datetime

    @classmethod
    def from_domain(cls, e: AuditEntry) -> IntegrityCase:
        return cls(
            id=strawberry.ID(e.entry_id),
            actor=strawberry.ID(e.actor),
            rule=e.rule,
            evidence=_evidence(e.evidence),
            trust_before=e.trust_before,
            trust_after=e.trust_after,
            tier_before=e.tier_before,
            tier_after=e.tier_after,
            verdict=integrity.Verdict(e.verdict),
            note=e.note,
            by=e.by,
            at=e.at,
        )


@strawberry.type
class IntegrityCaseEdge:
    cursor: str
    node: IntegrityCase


@strawberry.type
class IntegrityCaseConnection:
    edges: list[IntegrityCaseEdge]
    has_next_page: bool
    end_cursor: str | None


@strawberry.input
class ActorVerdictInput:
    actor: strawberry.ID
    verdict: integrity.Verdict
    note: str | None = None
