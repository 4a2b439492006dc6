"""Webhook endpoints, deliveries, and the webhook state of notifications, in MongoDB.

- ``webhook_endpoints``: {_id, creator_id (null: the deployment's), url, secret,
  active, disabled_reason, consecutive_failures, last_success_at, created_at}.
- ``webhook_deliveries``: {_id: "<notification id>:<endpoint id>", notification_id,
  endpoint_id, creator_id, body, status, attempts: [{at, status_code | error,
  duration_ms}], attempt_count, first_attempt_at, next_at, created_at, lease}.
- ``notifications`` (written by the notifier): ``webhook`` goes "pending" ->
  "queueing" (claimed by one sender, with ``webhook_claimed_at``) -> "queued" (its
  deliveries exist), or "invalid" (no body can be built from it). ``webhook_claim``
  is the claiming pass's token while it is "queueing".

Claims are single-document atomic updates, so two senders never take the same
notification or the same due delivery at once; the delivery ids make a second
queueing of one notification (after a sender died mid-way) insert nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import BulkWriteError, DuplicateKeyError

from domain.webhooks import (
    DEPLOYMENT_ENDPOINT_ID,
    Delivery,
    DeliveryStatus,
    Endpoint,
)
from storage.mongo import duplicate_key_errors

NOTIFICATIONS = "notifications"
ENDPOINTS = "webhook_endpoints"
DELIVERIES = "webhook_deliveries"

PENDING = "pending"
QUEUEING = "queueing"
QUEUED = "queued"
INVALID = "invalid"

INDEXES: dict[str, list[IndexModel]] = {
    # The notifier creates this one too (its pending notifications, oldest first).
    NOTIFICATIONS: [IndexModel([("webhook", ASCENDING), ("created_at", ASCENDING)])],
    ENDPOINTS: [IndexModel([("creator_id", ASCENDING), ("created_at", ASCENDING)])],
    DELIVERIES: [
        # Due deliveries: equality on status, then the range on next_at.
        IndexModel([("status", ASCENDING), ("next_at", ASCENDING)], name="due"),
        # An endpoint's pending deliveries, failed together when it is disabled.
        IndexModel([("endpoint_id", ASCENDING), ("status", ASCENDING)]),
    ],
}


async def ensure_webhook_indexes(db: Any, *, delivery_ttl_s: int | None = None) -> None:
    """Idempotent. ``delivery_ttl_s`` (a real server only) expires deliveries and their
    attempt records that long after they were queued (at least the 24 h window)."""
    for name, indexes in INDEXES.items():
        await db[name].create_indexes(indexes)
    if delivery_ttl_s is not None:
        if delivery_ttl_s < 2 * 24 * 3600:
            raise ValueError("deliveries are kept at least 48 hours")
        await db[DELIVERIES].create_indexes(
            [IndexModel([("created_at", ASCENDING)], expireAfterSeconds=delivery_ttl_s)]
        )


def _endpoint(doc: dict[str, Any]) -> Endpoint:
    return Endpoint(
        endpoint_id=doc["_id"],
        creator_id=doc.get("creator_id"),
        url=doc["url"],
        secret=doc["secret"],
        active=bool(doc.get("active", True)),
        created_at=doc["created_at"],
        disabled_reason=doc.get("disabled_reason"),
        consecutive_failures=int(doc.get("consecutive_failures", 0)),
        last_success_at=doc.get("last_success_at"),
    )


def _endpoint_doc(e: Endpoint) -> dict[str, Any]:
    return {
        "_id": e.endpoint_id,
        "creator_id": e.creator_id,
        "url": e.url,
        "secret": e.secret,
        "active": e.active,
        "disabled_reason": e.disabled_reason,
        "consecutive_failures": e.consecutive_failures,
        "last_success_at": e.last_success_at,
        "created_at": e.created_at,
    }


def _delivery(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        delivery_id=doc["_id"],
        notification_id=doc["notification_id"],
        endpoint_id=doc["endpoint_id"],
        body=doc["body"],
        attempt_count=int(doc.get("attempt_count", 0)),
        first_attempt_at=doc.get("first_attempt_at"),
        next_at=doc["next_at"],
    )


# What the sender reads of a delivery: not its attempt records.
_DELIVERY_FIELDS = {"attempts": 0}


class MongoWebhooks:
    def __init__(self, db: Any) -> None:
        self._notifications = db[NOTIFICATIONS]
        self._endpoints = db[ENDPOINTS]
        self._deliveries = db[DELIVERIES]

    # --- a creator's endpoints (domain.webhooks.EndpointStore) ------------------------

    async def insert(self, endpoint: Endpoint) -> None:
        await self._endpoints.insert_one(_endpoint_doc(endpoint))

    async def count_for(self, creator_id: str) -> int:
        return int(await self._endpoints.count_documents({"creator_id": creator_id}))

    async def list_for(self, creator_id: str) -> list[Endpoint]:
        cursor = self._endpoints.find({"creator_id": creator_id}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_endpoint(doc) async for doc in cursor]

    async def delete(self, creator_id: str, endpoint_id: str) -> bool:
        result = await self._endpoints.delete_one({"_id": endpoint_id, "creator_id": creator_id})
        if not result.deleted_count:
            return False
        await self.fail_pending(endpoint_id)
        return True

    # --- the sender ---------------------------------------------------------------

    async def upsert_deployment(self, url: str, secret: str, now: datetime) -> Endpoint:
        """The deployment's endpoint as the settings say. A new URL or secret makes it
        active again (the operator's way to re-enable it); otherwise its state stays,
        so a restart does not re-enable an endpoint that was disabled."""
        try:
            await self._endpoints.insert_one(
                _endpoint_doc(
                    Endpoint(DEPLOYMENT_ENDPOINT_ID, None, url, secret, True, created_at=now)
                )
            )
        except DuplicateKeyError:
            await self._endpoints.update_one(
                {
                    "_id": DEPLOYMENT_ENDPOINT_ID,
                    "$or": [{"url": {"$ne": url}}, {"secret": {"$ne": secret}}],
                },
                {
                    "$set": {
                        "url": url,
                        "secret": secret,
                        "active": True,
                        "disabled_reason": None,
                        "consecutive_failures": 0,
                    }
                },
            )
        doc = await self._endpoints.find_one({"_id": DEPLOYMENT_ENDPOINT_ID})
        return _endpoint(doc)

    async def active_endpoints(
        self, creator_ids: Iterable[str], *, deployment: bool
    ) -> list[Endpoint]:
        """The active endpoints of these creators, and the deployment's if asked for."""
        query: dict[str, Any] = {"creator_id": {"$in": list(creator_ids)}, "active": True}
        if deployment:
            query = {"$or": [query, {"_id": DEPLOYMENT_ENDPOINT_ID, "active": True}]}
        return [_endpoint(doc) async for doc in self._endpoints.find(query)]

    async def endpoints(self, endpoint_ids: Sequence[str]) -> dict[str, Endpoint]:
        cursor = self._endpoints.find({"_id": {"$in": list(endpoint_ids)}})
        return {doc["_id"]: _endpoint(doc) async for doc in cursor}

    async def endpoint_succeeded(self, endpoint_id: str, at: datetime) -> None:
        await self._endpoints.update_one(
            {"_id": endpoint_id},
            {"$set": {"consecutive_failures": 0, "last_success_at": at}},
        )

    async def endpoint_failed(self, endpoint_id: str) -> None:
        await self._endpoints.update_one(
            {"_id": endpoint_id}, {"$inc": {"consecutive_failures": 1}}
        )

    async def disable(
        self, endpoint_id: str, reason: str, *, unless_success_since: datetime | None = None
    ) -> bool:
        """Disable an active endpoint and fail its pending deliveries. With
        ``unless_success_since``, only if nothing succeeded since then (one guarded
        update: a success recorded meanwhile by another sender keeps it active)."""
        query: dict[str, Any] = {"_id": endpoint_id, "active": True}
        if unless_success_since is not None:
            query["$or"] = [
                {"last_success_at": None},
                {"last_success_at": {"$lt": unless_success_since}},
            ]
        result = await self._endpoints.update_one(
            query, {"$set": {"active": False, "disabled_reason": reason}}
        )
        if not result.modified_count:
            return False
        await self.fail_pending(endpoint_id)
        return True

    async def fail_pending(self, endpoint_id: str) -> None:
        """End the endpoint's pending deliveries unsent (it was disabled or deleted)."""
        await self._deliveries.update_many(
            {"endpoint_id": endpoint_id, "status": DeliveryStatus.PENDING.value},
            {"$set": {"status": DeliveryStatus.FAILED.value, "next_at": None}},
        )

    # --- notifications ------------------------------------------------------------

    async def claim_notifications(
        self, now: datetime, limit: int, *, stale_before: datetime, token: str
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` notifications waiting to be queued, oldest first, moved to
        "queueing" for ``token``; one left in "queueing" since before ``stale_before``
        (its sender died) is taken again. Three round trips for the batch: the
        candidates, one update that takes those still claimable (each document
        atomically, so no two senders get the same one), and the ones this token got."""
        claimable = {
            "$or": [
                {"webhook": PENDING},
                {"webhook": QUEUEING, "webhook_claimed_at": {"$lt": stale_before}},
            ]
        }
        cursor = (
            self._notifications.find(claimable, {"_id": 1})
            .sort("created_at", ASCENDING)
            .limit(limit)
        )
        ids = [doc["_id"] async for doc in cursor]
        if not ids:
            return []
        await self._notifications.update_many(
            {"_id": {"$in": ids}, **claimable},
            {"$set": {"webhook": QUEUEING, "webhook_claimed_at": now, "webhook_claim": token}},
        )
        cursor = self._notifications.find({"_id": {"$in": ids}, "webhook_claim": token})
        mine = {doc["_id"]: doc async for doc in cursor}
        return [mine[i] for i in ids if i in mine]

    async def mark_notifications(self, ids: Sequence[Any], state: str) -> None:
        if ids:
            await self._notifications.update_many(
                {"_id": {"$in": list(ids)}, "webhook": QUEUEING},
                {"$set": {"webhook": state}, "$unset": {"webhook_claim": ""}},
            )

    # --- deliveries ---------------------------------------------------------------

    async def add_deliveries(self, docs: Sequence[dict[str, Any]]) -> int:
        """Insert new deliveries; ones that exist already (queued before) are left as
        they are. Returns how many were new."""
        if not docs:
            return 0
        try:
            await self._deliveries.insert_many(list(docs), ordered=False)
        except BulkWriteError as exc:
            return len(docs) - len(duplicate_key_errors(exc))
        return len(docs)

    async def claim_due(
        self, now: datetime, limit: int, *, lease_until: datetime, token: str
    ) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due at ``now``, leased to ``token`` until
        ``lease_until`` (when they are due again if the sender died meanwhile)."""
        due = {"status": DeliveryStatus.PENDING.value, "next_at": {"$lte": now}}
        cursor = self._deliveries.find(due, {"_id": 1}).sort("next_at", ASCENDING).limit(limit)
        ids = [doc["_id"] async for doc in cursor]
        if not ids:
            return []
        await self._deliveries.update_many(
            {"_id": {"$in": ids}, **due}, {"$set": {"next_at": lease_until, "lease": token}}
        )
        cursor = self._deliveries.find({"_id": {"$in": ids}, "lease": token}, _DELIVERY_FIELDS)
        mine = {doc["_id"]: _delivery(doc) async for doc in cursor}
        return [mine[i] for i in ids if i in mine]

    async def record_attempt(
        self,
        delivery: Delivery,
        token: str,
        attempt: dict[str, Any] | None,
        status: DeliveryStatus,
        next_at: datetime | None,
        first_attempt_at: datetime | None,
    ) -> bool:
        """Store an attempt (None: the delivery ends without one, its endpoint gone) and
        the delivery's new state, if this sender still holds its lease."""
        change: dict[str, Any] = {
            "$set": {
                "status": status.value,
                "next_at": next_at,
                "first_attempt_at": first_attempt_at,
            },
            "$unset": {"lease": ""},
        }
        if attempt is not None:
            change["$push"] = {"attempts": attempt}
            change["$inc"] = {"attempt_count": 1}
        result = await self._deliveries.update_one(
            {"_id": delivery.delivery_id, "lease": token}, change
        )
        return bool(result.modified_count)
