"""Every Redis key, stream and channel name, built in one place.

Keys that the aggregator touches in one script share a partition hash tag
(``{p3}``) so the same code runs on Redis Cluster: a partition's stream, its
applied-event set and the counters of the contents hashed to it live in one slot.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "lv"
    partitions: int = 4

    def partition(self, content_id: str) -> int:
        return zlib.crc32(content_id.encode()) % self.partitions

    def _tag(self, partition: int) -> str:
        return f"{self.prefix}:{{p{partition}}}"

    def counters(self, content_id: str) -> str:
        return f"{self._tag(self.partition(content_id))}:cnt:{content_id}"

    def uniques(self, content_id: str) -> str:
        return f"{self._tag(self.partition(content_id))}:uv:{content_id}"

    def counter_pairs(self, partition: int, content_ids: list[str]) -> list[str]:
        """counters(c), uniques(c) for each c, all of one partition.

        The tag is built once: a feed read names 100 keys on every request.
        """
        tag = self._tag(partition)
        return [name for c in content_ids for name in (f"{tag}:cnt:{c}", f"{tag}:uv:{c}")]

    def applied(self, partition: int) -> str:
        return f"{self._tag(partition)}:applied"

    def stream(self, partition: int) -> str:
        return f"{self._tag(partition)}:events"

    def streams(self) -> list[str]:
        return [self.stream(p) for p in range(self.partitions)]

    def touched(self, partition: int) -> str:
        # Contents the aggregator changed (score: when), for the reconciler to check first.
        return f"{self._tag(partition)}:touched"

    def snapshot_touched(self, partition: int) -> str:
        # Contents the aggregator changed since the snapshotter last took them (score:
        # when): the same marks as touched(), kept apart so each worker takes its own.
        return f"{self._tag(partition)}:snap-touched"

    def reconcile_sweep(self) -> str:
        # Where the reconciler's sweep of all contents stands, shared by every worker.
        return f"{self.prefix}:reconcile:sweep"

    def idempotency(self, user_id: str, request_id: str) -> str:
        # Hashed: user and request ids are client strings of any shape.
        digest = hashlib.blake2b(f"{user_id}\x00{request_id}".encode(), digest_size=16)
        return f"{self.prefix}:idem:{digest.hexdigest()}"

    def rate_limit(self, action: str, scope: str, subject: str) -> str:
        # GCRA state of one limit (storage/redis_rate_limits.py). Every limit key shares
        # one hash tag, so a request's scopes (user, device, address: unrelated ids) are
        # decided by one script on one Redis Cluster slot. Hashed: subjects are client
        # strings of any shape (the address is already a salted hash).
        digest = hashlib.blake2b(subject.encode(), digest_size=12).hexdigest()
        return f"{self.prefix}:{{rl}}:{action}:{scope}:{digest}"

    def address_salt(self, day: str) -> str:
        # The day's salt of client-address hashes (domain/identity.py), "yyyymmdd".
        return f"{self.prefix}:salt:{day}"

    def persisted_query(self, sha256_hex: str) -> str:
        # Automatic persisted queries: the text of a query by its SHA-256.
        return f"{self.prefix}:pq:{sha256_hex}"

    # Every live channel shares one hash tag. On Redis Cluster a PUBLISH goes to
    # its channel's slot node, which relays it to the others over its own bus
    # link to each: publishes sent to one node reach a subscriber in the order
    # sent, publishes sent to two nodes travel two links and may swap. A
    # subscription relies on "your reaction changes" arriving before the counts
    # that include the change (subscriptions/messages.py), so both go to one node.
    def channel(self, content_id: str) -> str:
        return f"{self.prefix}:{{pushes}}:c:{content_id}"

    def user_channel(self, user_id: str) -> str:
        # "Your own reactions changed": lets a live UI keep viewerReaction current.
        return f"{self.prefix}:{{pushes}}:u:{user_id}"

    def view_dedupe(self, content_id: str, dedupe_key: str) -> str:
        return f"{self._tag(self.partition(content_id))}:vd:{content_id}:{dedupe_key}"

    def analytics_applied(self, partition: int) -> str:
        # Events the analytics worker applied (score: when), like applied() for counters.
        return f"{self._tag(partition)}:an-applied"

    def analytics_prefix(self) -> str:
        # How every analytics sketch key starts (a rebuild of everything finds them so).
        return f"{self.prefix}:{{an:"

    def analytics_scope_prefix(self, scope: str) -> str:
        # Every sketch of one analytics scope ("c:<content>", "u:<creator>") shares a
        # hash tag, so a range's buckets can be counted together (PFCOUNT, SUNION).
        return f"{self.analytics_prefix()}{scope}}}:"

    def analytics_sketch(
        self, scope: str, granularity: str, start_ms: int, kind: str
    ) -> tuple[str, str, str]:
        """(exact set, overflow marker, HyperLogLog) of one bucket's distinct people;
        ``kind`` "v" for viewers, "r" for reacting users."""
        base = f"{self.analytics_scope_prefix(scope)}{kind}:{granularity}:{start_ms}"
        return f"{base}:set", f"{base}:over", f"{base}:hll"

    # Trending and ranking signals (storage/redis_trending.py): a content's keys
    # carry its partition's tag, so one script per partition touches one slot.

    def signal_ring(self, content_id: str) -> str:
        # Hash: "m<slot>" = "minute,views,likes" per minute slot, "w" lifetime
        # watch ms, "_at" when the trending worker last changed it, "sums" what a
        # read summed of it (storage/redis_trending.py READ_SUMS).
        return f"{self._tag(self.partition(content_id))}:sig:{content_id}"

    def signal_read_keys(self, partition: int, content_ids: list[str]) -> list[str]:
        """signal_ring(c), reactor_viewers(c), uniques(c), counters(c) for each c, all
        of one partition (a ranking read names 400 keys; the tag is built once)."""
        tag = self._tag(partition)
        return [
            name
            for c in content_ids
            for name in (f"{tag}:sig:{c}", f"{tag}:rv:{c}", f"{tag}:uv:{c}", f"{tag}:cnt:{c}")
        ]

    def reactor_viewers(self, content_id: str) -> str:
        # HyperLogLog of the users who reacted, as viewer keys ("u:<id>").
        return f"{self._tag(self.partition(content_id))}:rv:{content_id}"

    def trend_state(self, content_id: str) -> str:
        # Hash: "<window code>|<region>" = "recent,baseline,t_ms".
        return f"{self._tag(self.partition(content_id))}:ts:{content_id}"

    def trend_set(self, partition: int, window_code: str, kind: str, region: str) -> str:
        # Sorted set: content id -> frame score (kind "ALL", region "all" included).
        return f"{self._tag(partition)}:tz:{window_code}:{kind}:{region}"

    def trend_applied(self, partition: int) -> str:
        # Events the trending worker applied (score: when), like applied().
        return f"{self._tag(partition)}:tr-applied"

    def signals_stream(self, partition: int) -> str:
        # Ranking signals of changed contents, for pipelines (docs/TRENDING.md).
        return f"{self._tag(partition)}:signals"

    def trend_channel(self, window_code: str, kind: str) -> str:
        # A pub/sub channel, not a key: the top list of region "all" when it changes.
        return f"{self.prefix}:trend:{window_code}:{kind}"

    def actor_tier(self, actor: str) -> str:
        # Hashed: actors are viewer keys made of client strings of any shape. An
        # actor's own slot: the write paths read it beside other keys, by pipeline.
        digest = hashlib.blake2b(actor.encode(), digest_size=16).hexdigest()
        return f"{self.prefix}:tier:{digest}"

    # Count integrity detection (storage/redis_integrity.py). An actor's keys share one
    # hash tag, and so do a device's, an address's and a playback signature's, so every
    # script and command touches one Redis Cluster slot. Hashed: the ids are client
    # strings of any shape.

    def _integrity_tag(self, kind: str, ident: str) -> str:
        digest = hashlib.blake2b(f"{kind}\x00{ident}".encode(), digest_size=12).hexdigest()
        return f"{self.prefix}:{{ig:{kind}:{digest}}}"

    def integrity_actor(self, actor: str) -> tuple[str, str, str, str, str, str]:
        """(applied tokens, bucketed counters and notes, sessions, sessions by last
        event, contents viewed, playback shapes) of one actor ("u:..." or "d:...")."""
        tag = self._integrity_tag("a", actor)
        return (f"{tag}:ap", f"{tag}:f", f"{tag}:s", f"{tag}:so", f"{tag}:c", f"{tag}:g")

    def integrity_device(self, device: str) -> str:
        # Sorted set: actor -> last seen (ms), the newest few hundred.
        return f"{self._integrity_tag('d', device)}:m"

    def integrity_address(self, addr: str) -> str:
        # Sorted set: actor -> last seen (ms), the newest few hundred.
        return f"{self._integrity_tag('i', addr)}:m"

    def integrity_address_sketches(self, addr: str, hour: int) -> tuple[str, str]:
        """HyperLogLogs of one address's signed-in accounts and anonymous devices in one
        hour (hours since the epoch): counted over the group window, one slot."""
        tag = self._integrity_tag("i", addr)
        return f"{tag}:u:{hour}", f"{tag}:d:{hour}"

    def integrity_signature(self, signature: str) -> str:
        # Sorted set: actor -> last seen (ms), actors who played one content one way.
        return f"{self._integrity_tag('s', signature)}:m"

    def integrity_cohort(self, cohort: str) -> str:
        # Sorted set: "<part>\t<actor>" -> when: one content's blind likes (part:
        # the address), or one address's accounts on fast-switching devices.
        return f"{self._integrity_tag('k', cohort)}:m"

    # Creator notifications (storage/redis_notifications.py, docs/NOTIFICATIONS.md).

    def notify_channel(self, creator_id: str) -> str:
        # A pub/sub channel, not a key: "a notification was stored for this creator".
        return f"{self.prefix}:notify:{creator_id}"

    def notify_due(self) -> str:
        # Sorted set: checks the notifier's tick makes when their time (score, ms)
        # comes: "m:<content>" milestones, "f:<content>" first like,
        # "d:<content>:<window start ms>" a digest window closing.
        return f"{self.prefix}:notify:due"

    def _notify_tag(self, content_id: str) -> str:
        digest = hashlib.blake2b(content_id.encode(), digest_size=12).hexdigest()
        return f"{self.prefix}:{{nt:{digest}}}"

    def notify_content(self, content_id: str) -> tuple[str, str, str, str]:
        """(applied event ids, state hash, open digest window's actors, first-like
        candidates) of one content: one hash tag, so each script touches one slot."""
        tag = self._notify_tag(content_id)
        return f"{tag}:ap", f"{tag}:st", f"{tag}:open", f"{tag}:fl"

    def notify_closed(self, content_id: str, start_ms: int) -> str:
        # A closed digest window's actors, kept until its digest is stored.
        return f"{self._notify_tag(content_id)}:dg:{start_ms}"

    # Consumer group names are stream-scoped, not keys, but belong with them.
    AGGREGATOR_GROUP = "aggregator"
    ARCHIVE_GROUP = "archiver"
    ANALYTICS_GROUP = "analytics"
    TRENDING_GROUP = "trending"
    INTEGRITY_GROUP = "integrity"
    NOTIFIER_GROUP = "notifier"
