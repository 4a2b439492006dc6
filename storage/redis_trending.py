"""Ranking signals and trend scores in Redis, kept by the trending worker.

Per content (keys tagged with its partition, storage/keys.py): a hash with the
minute ring, lifetime watch time, the time of the last change and what the last
read of this minute summed (``signal_ring``; READ_SUMS); a HyperLogLog of the
users who reacted (``reactor_viewers``); a hash of decayed sums per (window,
region) (``trend_state``). Per partition:
one sorted set per (window, kind, region) of frame scores (``trend_set``) and
the applied-token set (``trend_applied``).

A batch of one partition is applied by one Lua script, atomically and
effectively once: if any of its tokens was applied before, nothing is written
and the script names them (the caller drops their events and calls again), so a
redelivery can never add half a batch twice. The script advances the decayed
sums and scores them with the arithmetic of domain/trending.py (advance, heat,
frame_score), reading every constant from its arguments; the simulation test
holds the two to 1e-9.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from domain.signals import (
    CUTS,
    MINUTE_MS,
    RING_MINUTES,
    SLOPE_WEIGHTS,
    SPAN,
    ContentDelta,
    Minute,
    RawSignals,
    Signals,
    Sums,
)
from domain.trending import (
    EPOCH_MS,
    MAX_MEMBERS,
    PRIOR,
    WINDOWS,
    Ranked,
    State,
    StateKey,
    TrendWindow,
    prune_below,
    rank,
    set_keys,
)
from storage.keys import Keys
from storage.redis_scripts import Call, PipelinedScript

# A state untouched this long goes: by then even DAY's baseline (7 days) has
# decayed to e^-4.3 (1.4%) of what it held, and its content scores nothing.
STATE_TTL_MS = 30 * 86_400_000
# The signals stream is a feed of changes, not a store (docs/TRENDING.md).
SIGNALS_MAXLEN = 100_000
_WINDOW_INDEX = {w: i + 1 for i, w in enumerate(WINDOWS)}  # Lua's 1-based index

# KEYS: the applied set; per content its ring, reactor sketch and state hash; then
# the sorted sets. ARGV: now, horizon, ring minutes, state TTL, PRIOR, EPOCH_MS,
# MAX_MEMBERS, n windows and per window (recent_s, baseline_s, decay per s, prune
# floor); n tokens, tokens; n contents and per content: id, n minutes and
# (minute, views, likes)..., watch ms, n reactors and reactors, n states and per
# state: field, window index, recent, baseline, t_ms, n sets and their KEYS indexes.
# Returns the tokens applied before (nothing written), or an empty list.
APPLY = """
local applied = KEYS[1]
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', applied, '-inf', now - tonumber(ARGV[2]))
local ring = tonumber(ARGV[3])
local state_ttl = tonumber(ARGV[4])
local prior = tonumber(ARGV[5])
local epoch = tonumber(ARGV[6])
local max_members = tonumber(ARGV[7])
local windows = {}
local pos = 9
for w = 1, tonumber(ARGV[8]) do
  windows[w] = {rs = tonumber(ARGV[pos]), bs = tonumber(ARGV[pos + 1]),
                k = tonumber(ARGV[pos + 2]), floor = ARGV[pos + 3]}
  pos = pos + 4
end
local ntok = tonumber(ARGV[pos]); pos = pos + 1
local seen = {}
for i = pos, pos + ntok - 1 do
  if redis.call('ZSCORE', applied, ARGV[i]) then seen[#seen + 1] = ARGV[i] end
end
if #seen > 0 then return seen end
for i = pos, pos + ntok - 1 do redis.call('ZADD', applied, ARGV[1], ARGV[i]) end
pos = pos + ntok

local oldest = math.floor(now / 60000) - ring + 1
local function ring_add(sig, m, v, l)
  -- A slot holds one minute: an older one in it is overwritten, a newer one
  -- wins over a late event (its minute has left the ring).
  if m < oldest then return end
  local field = 'm' .. string.format('%d', m % ring)
  local old = redis.call('HGET', sig, field)
  if old then
    local om, ov, ol = string.match(old, '^(%-?%d+),(%d+),(%d+)$')
    om = tonumber(om)
    if om == m then
      v = v + tonumber(ov); l = l + tonumber(ol)
    elseif om and om > m then
      return
    end
  end
  -- An exclusion takes back what its minute held, never more.
  if v < 0 then v = 0 end
  if l < 0 then l = 0 end
  redis.call('HSET', sig, field, string.format('%d,%d,%d', m, v, l))
end

-- domain.trending.advance and heat, operation for operation.
local function advance(old, r, b, t, win)
  local r0, b0, t0 = string.match(old, '^([^,]+),([^,]+),([^,]+)$')
  r0, b0, t0 = tonumber(r0), tonumber(b0), tonumber(t0)
  if not (r0 and b0 and t0) then return r, b, t end
  if t >= t0 then
    local dt = (t - t0) / 1000.0
    return r0 * math.exp(-dt / win.rs) + r, b0 * math.exp(-dt / win.bs) + b, t
  end
  local dt = (t0 - t) / 1000.0
  return r0 + r * math.exp(-dt / win.rs), b0 + b * math.exp(-dt / win.bs), t0
end
local function heat(r, b, win)
  -- Unlikes can take the baseline below zero; nothing is expected then.
  local expected = math.max(b * win.rs / win.bs, 0)
  local excess = r - expected
  if excess <= 0 then return 0 end
  return excess * excess / math.max(expected, prior)
end

local touched = {}
local nc = tonumber(ARGV[pos]); pos = pos + 1
for c = 1, nc do
  local sig, rv, ts = KEYS[3 * c - 1], KEYS[3 * c], KEYS[3 * c + 1]
  local cid = ARGV[pos]
  local nm = tonumber(ARGV[pos + 1]); pos = pos + 2
  for _ = 1, nm do
    ring_add(sig, tonumber(ARGV[pos]), tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2]))
    pos = pos + 3
  end
  if tonumber(ARGV[pos]) ~= 0 then redis.call('HINCRBY', sig, 'w', ARGV[pos]) end
  local nr = tonumber(ARGV[pos + 1]); pos = pos + 2
  local i = pos
  while i < pos + nr do
    local j = math.min(i + 999, pos + nr - 1)
    redis.call('PFADD', rv, unpack(ARGV, i, j))
    i = j + 1
  end
  pos = pos + nr
  redis.call('HSET', sig, '_at', ARGV[1])
  -- What a read stored of this ring (READ_SUMS) is stale now.
  redis.call('HDEL', sig, 'sums')
  local ns = tonumber(ARGV[pos]); pos = pos + 1
  for _ = 1, ns do
    local field, win = ARGV[pos], windows[tonumber(ARGV[pos + 1])]
    local r, b, t = tonumber(ARGV[pos + 2]), tonumber(ARGV[pos + 3]), tonumber(ARGV[pos + 4])
    local nk = tonumber(ARGV[pos + 5]); pos = pos + 6
    local old = redis.call('HGET', ts, field)
    if old then r, b, t = advance(old, r, b, t, win) end
    -- %.17g: a double survives the round trip through its text exactly.
    redis.call('HSET', ts, field, string.format('%.17g,%.17g,%.17g', r, b, t))
    local h = heat(r, b, win)
    local score = nil
    if h > 0 then
      score = string.format('%.17g', math.log(h) + win.k * (t - epoch) / 1000.0)
    end
    for k = 0, nk - 1 do
      local idx = tonumber(ARGV[pos + k])
      if score then
        redis.call('ZADD', KEYS[idx], score, cid)
      else
        redis.call('ZREM', KEYS[idx], cid)
      end
      touched[idx] = win
    end
    pos = pos + nk
  end
  if ns > 0 then redis.call('PEXPIRE', ts, state_ttl) end
end
for idx, win in pairs(touched) do
  redis.call('ZREMRANGEBYSCORE', KEYS[idx], '-inf', '(' .. win.floor)
  redis.call('ZREMRANGEBYRANK', KEYS[idx], 0, -(max_members + 1))
end
return {}
"""

# KEYS per content: ring, reactor sketch, unique viewers, counters. Per content one
# flat row: {_at (-1: never), watch ms, likes, views, unique viewers, viewers who
# reacted, then minute, views, likes for each ring slot}.
READ = """
local out = {}
for i = 1, #KEYS / 4 do
  local sig, rv, uv, cnt = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local row = {-1, 0, 0, 0, 0, 0}
  local flat = redis.call('HGETALL', sig)
  for j = 1, #flat, 2 do
    local k, v = flat[j], flat[j + 1]
    if k == '_at' then
      row[1] = tonumber(v) or -1
    elseif k == 'w' then
      row[2] = tonumber(v) or 0
    elseif string.sub(k, 1, 1) == 'm' then
      local m, vw, lk = string.match(v, '^(%-?%d+),(%d+),(%d+)$')
      if m then
        row[#row + 1] = tonumber(m)
        row[#row + 1] = tonumber(vw)
        row[#row + 1] = tonumber(lk)
      end
    end
  end
  local c = redis.call('HMGET', cnt, 'likes', 'views')
  row[3] = c[1] and tonumber(c[1]) or 0
  row[4] = c[2] and tonumber(c[2]) or 0
  local nu = redis.call('PFCOUNT', uv)
  row[5] = nu
  if nu > 0 then
    -- |V and R| = |V| + |R| - |V or R|, each an estimate: clamped at 0.
    local nr = redis.call('PFCOUNT', rv)
    if nr > 0 then
      local both = nu + nr - redis.call('PFCOUNT', uv, rv)
      if both > 0 then row[6] = both end
    end
  end
  out[i] = row
end
return out
"""


# domain.signals.sums, in Redis: a read carries a few integers per content instead
# of its ring (~210 values), and they are exact integers, so the floats computed
# from them (domain.signals.from_sums) are the same whichever side summed.
#
# Summing a ring costs Redis about 75 µs per content (HGETALL of ~70 slots and
# their parsing), and the intersection of two HyperLogLogs up to ~120 µs: 100
# contents would hold Redis for milliseconds on every read. Both change only when
# the minute turns or the trending worker writes the content (it sets ``_at`` and
# drops ``sums``), so the first read after either stores its result in the ring's
# ``sums`` field, stamped with (minute, _at), and the reads after it take that. The
# unique viewers are counted on every read (PFCOUNT of one sketch is cached by
# Redis itself); the viewers who also reacted are as of the worker's last write.
#
# KEYS per content: ring, reactor sketch, unique viewers, counters. ARGV: the
# current minute, 1 if it began just now (it then spreads nothing: not stored).
# domain.signals' SPAN (ages 0 .. SPAN - 1 are read), CUTS and SLOPE_WEIGHTS (for
# ages 1, 2, ...) are written into the script's text: as arguments they were a
# quarter of what a read sent. Per content one row: {_at (-1: never), watch
# ms, likes, views, unique viewers, viewers who reacted, "slope's weighted sum,
# views' prefix sums at the cuts, likes' prefix sums at the cuts" (one string)}.
READ_SUMS = """
local current = ARGV[1]
local minute = tonumber(current)
local fresh = ARGV[2] == '1'
local span = @SPAN@
local cuts = {@CUTS@}
local ncut = #cuts
local weights = {@WEIGHTS@}
local nw = #weights

local function ring_sums(sig)
  local views, likes = {}, {}
  for k = 0, span - 1 do views[k] = 0; likes[k] = 0 end
  local flat = redis.call('HGETALL', sig)
  for j = 1, #flat, 2 do
    if string.sub(flat[j], 1, 1) == 'm' then
      local m, vw, lk = string.match(flat[j + 1], '^(%-?%d+),(%d+),(%d+)$')
      if m then
        local age = minute - tonumber(m)
        if age >= 0 and age < span and (age > 0 or not fresh) then
          views[age] = tonumber(vw); likes[age] = tonumber(lk)
        end
      end
    end
  end
  local weighted = 0
  for j = 1, nw do weighted = weighted + weights[j] * views[j] end
  local parts = {string.format('%d', weighted)}
  for _, series in ipairs({views, likes}) do
    local total, age = 0, 0
    for j = 1, ncut do
      while age < cuts[j] do total = total + series[age]; age = age + 1 end
      parts[#parts + 1] = string.format('%d', total)
    end
  end
  return table.concat(parts, ',')
end

local function reacting(uv, rv, nu)
  -- |V and R| = |V| + |R| - |V or R|, each an estimate: clamped at 0.
  if nu == 0 then return 0 end
  local nr = redis.call('PFCOUNT', rv)
  if nr == 0 then return 0 end
  local both = nu + nr - redis.call('PFCOUNT', uv, rv)
  if both > 0 then return both end
  return 0
end

local out = {}
for i = 1, #KEYS / 4 do
  local sig, rv, uv, cnt = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local h = redis.call('HMGET', sig, '_at', 'w', 'sums')
  local c = redis.call('HMGET', cnt, 'likes', 'views')
  local nu = redis.call('PFCOUNT', uv)
  local both, body
  local stamp = h[1] and (current .. ',' .. h[1] .. ',')
  local cached = h[3]
  if stamp and not fresh and cached and string.sub(cached, 1, #stamp) == stamp then
    both, body = string.match(cached, '^[^,]+,[^,]+,(%d+),(.*)$', 1)
    both = tonumber(both)
  else
    body = ring_sums(sig)
    both = reacting(uv, rv, nu)
    -- Never for a content the worker has not written (no ring to keep it in).
    if stamp and not fresh then
      redis.call('HSET', sig, 'sums', stamp .. string.format('%d', both) .. ',' .. body)
    end
  end
  out[i] = {tonumber(h[1]) or -1, tonumber(h[2]) or 0,
            c[1] and tonumber(c[1]) or 0, c[2] and tonumber(c[2]) or 0,
            nu, both, body}
end
return out
"""
READ_SUMS = (
    READ_SUMS.replace("@SPAN@", str(SPAN))
    .replace("@CUTS@", ", ".join(map(str, CUTS)))
    .replace("@WEIGHTS@", ", ".join(map(str, SLOPE_WEIGHTS)))
)


@dataclass(frozen=True, slots=True)
class TopQuery:
    window: TrendWindow
    kind: str  # a ContentKind value or ALL_KINDS
    region: str
    first: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _score_pairs(reply: Sequence[Any]) -> Iterable[tuple[str, float]]:
    """(member, score) of a ZRANGE ... WITHSCORES reply: RESP3's [member, score]
    pairs, or RESP2's flat member, score, member, ..."""
    if reply and isinstance(reply[0], list | tuple):
        return [(_text(m), float(s)) for m, s in reply]
    return [(_text(m), float(s)) for m, s in zip(reply[0::2], reply[1::2], strict=True)]


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def signals_json(s: Signals) -> bytes:
    """A stream entry's ``signals`` field: the GraphQL field names, ``updatedAt`` in
    ms since the epoch (docs/TRENDING.md)."""

    def rates(r: Any) -> dict[str, float]:
        return {
            "oneMinute": r.one_minute,
            "fifteenMinutes": r.fifteen_minutes,
            "oneHour": r.one_hour,
        }

    return orjson.dumps(
        {
            "contentId": s.content_id,
            "likesPerMinute": rates(s.likes_per_minute),
            "viewsPerMinute": rates(s.views_per_minute),
            "growthSlope": s.growth_slope,
            "velocityRatio": s.velocity_ratio,
            "engagementRatio": s.engagement_ratio,
            "viewToLikeConversion": s.view_to_like_conversion,
            "uniqueViewers": s.unique_viewers,
            "averageWatchMs": s.average_watch_ms,
            "updatedAt": s.updated_at_ms,
        }
    )


class RedisTrending:
    def __init__(self, client: aioredis.Redis, keys: Keys, dedupe_horizon_ms: int) -> None:
        self._r = client
        self._keys = keys
        self._horizon = dedupe_horizon_ms
        self._apply = PipelinedScript(APPLY)
        self._read = PipelinedScript(READ)
        self._read_sums = PipelinedScript(READ_SUMS)
        # A content's sums text stays the same until the minute turns or the worker
        # writes it, so most reads of it parse the same text again: parsed once.
        self._parsed: dict[str | bytes, tuple[int, ...]] = {}

    @property
    def keys(self) -> Keys:
        return self._keys

    async def load_scripts(self) -> None:
        await self._apply.load(self._r)
        await self._read.load(self._r)
        await self._read_sums.load(self._r)

    # --- writing ------------------------------------------------------------------

    async def apply(
        self,
        partition: int,
        tokens: Sequence[str],
        now_ms: int,
        signals: Mapping[str, ContentDelta],
        trend: Mapping[StateKey, State],
        kinds: Mapping[str, str],
    ) -> list[str] | None:
        """Apply one partition's folded batch, effectively once: None when applied;
        otherwise the tokens applied before, and nothing was written.

        ``kinds``: content id -> ContentKind value, for the sorted sets a state
        scores in (a content without one keeps its sums but is not listed)."""
        [reply] = await self.apply_many(
            [self.apply_call(partition, tokens, now_ms, signals, trend, kinds)]
        )
        return reply

    async def apply_many(self, calls: Sequence[Call]) -> list[list[str] | None]:
        """Several partitions' apply_call()s in one round trip (each atomic alone)."""
        replies = await self._apply.run_many(self._r, calls)
        return [[_text(t) for t in reply] if reply else None for reply in replies]

    def apply_call(
        self,
        partition: int,
        tokens: Sequence[str],
        now_ms: int,
        signals: Mapping[str, ContentDelta],
        trend: Mapping[StateKey, State],
        kinds: Mapping[str, str],
    ) -> Call:
        """The script's keys and arguments for apply()."""
        keys = self._keys
        states: dict[str, list[tuple[StateKey, State]]] = {}
        for key, state in trend.items():
            states.setdefault(key.content_id, []).append((key, state))
        contents = list(dict.fromkeys([*signals, *states]))
        for cid in contents:
            if keys.partition(cid) != partition:
                raise ValueError(f"content {cid!r} is not in partition {partition}")
        names = [keys.trend_applied(partition)]
        for cid in contents:
            names += [keys.signal_ring(cid), keys.reactor_viewers(cid), keys.trend_state(cid)]
        set_index: dict[str, int] = {}
        args: list[Any] = [
            now_ms,
            self._horizon,
            RING_MINUTES,
            STATE_TTL_MS,
            PRIOR,
            EPOCH_MS,
            MAX_MEMBERS,
            len(WINDOWS),
        ]
        for spec in WINDOWS.values():
            args += [spec.recent_s, spec.baseline_s, spec.decay_per_s, prune_below(now_ms, spec)]
        unique_tokens = list(dict.fromkeys(tokens))
        args += [len(unique_tokens), *unique_tokens, len(contents)]
        for cid in contents:
            delta = signals.get(cid)
            minutes = sorted(delta.minutes.items()) if delta else []
            reactors = sorted(delta.reactors or ()) if delta else []
            args += [cid, len(minutes)]
            for minute, (views, likes) in minutes:
                args += [minute, views, likes]
            args += [delta.watch_ms if delta else 0, len(reactors), *reactors]
            content_states = states.get(cid, [])
            args.append(len(content_states))
            kind = kinds.get(cid)
            for key, state in content_states:
                spec = WINDOWS[key.window]
                sets = [] if kind is None else set_keys(key.window, kind, key.region)
                indexes = []
                for sk in sets:
                    name = keys.trend_set(partition, spec.code, sk.kind, sk.region)
                    if name not in set_index:
                        names.append(name)
                        set_index[name] = len(names)  # 1-based, as KEYS
                    indexes.append(set_index[name])
                args += [
                    f"{spec.code}|{key.region}",
                    _WINDOW_INDEX[key.window],
                    state.recent,
                    state.baseline,
                    state.t_ms,
                    len(indexes),
                    *indexes,
                ]
        return names, args

    async def publish_signals(self, items: Sequence[Signals]) -> None:
        """Append each content's signals to its partition's signals stream (one
        round trip), trimmed to about SIGNALS_MAXLEN entries."""
        if not items:
            return
        pipe = self._r.pipeline(transaction=False)
        for s in items:
            pipe.xadd(
                self._keys.signals_stream(self._keys.partition(s.content_id)),
                {"content_id": s.content_id, "signals": signals_json(s)},
                maxlen=SIGNALS_MAXLEN,
                approximate=True,
            )
        await pipe.execute()

    async def flush(self) -> int:
        """Delete every trend state, sorted set, signal ring, reactor sketch and
        applied set (not the signals streams, a feed); returns how many keys went.
        A rebuild's first step: it scans the keyspace, never run it periodically."""
        keys = self._keys
        removed = 0
        for p in range(keys.partitions):
            tag = _glob_escape(keys.trend_applied(p).removesuffix(":tr-applied"))
            for pattern in (":sig:*", ":rv:*", ":ts:*", ":tz:*", ":tr-applied"):
                batch: list[str] = []
                async for raw in self._r.scan_iter(match=tag + pattern, count=1000):
                    batch.append(_text(raw))
                    if len(batch) >= 1000:
                        removed += await self._r.unlink(*batch)
                        batch = []
                if batch:
                    removed += await self._r.unlink(*batch)
        return removed

    # --- reading ------------------------------------------------------------------

    async def top(self, window: TrendWindow, kind: str, region: str, first: int) -> list[Ranked]:
        """The ``first`` highest frame scores of one (window, kind, region) set, over
        every partition (one round trip)."""
        [ranked] = await self.tops([TopQuery(window, kind, region, first)])
        return ranked

    async def tops(self, queries: Sequence[TopQuery]) -> list[list[Ranked]]:
        """Several top() reads in one round trip."""
        if not queries:
            return []
        keys = self._keys
        pipe = self._r.pipeline(transaction=False)
        for q in queries:
            code = WINDOWS[q.window].code
            for p in range(keys.partitions):
                # Not pipe.zrevrange(..., withscores=True): redis-py then turns
                # each RESP3 score into text and back into a float, a third of
                # this read's CPU. Without the option it hands the reply over.
                pipe.execute_command(
                    "ZREVRANGE",
                    keys.trend_set(p, code, q.kind, q.region),
                    0,
                    q.first - 1,
                    "WITHSCORES",
                )
        replies = await pipe.execute()
        out: list[list[Ranked]] = []
        for i, q in enumerate(queries):
            scores: dict[str, float] = {}
            for reply in replies[i * keys.partitions : (i + 1) * keys.partitions]:
                scores.update(_score_pairs(reply))
            # Ties within one partition come in Redis's order (reverse by member);
            # across partitions rank() orders them by id, so every reader agrees.
            out.append(rank(scores, q.first))
        return out

    async def raw_signals(self, content_ids: Sequence[str]) -> dict[str, RawSignals]:
        """Per content, what its ranking signals are computed from (one round trip:
        one script call per partition). A content never seen reads as zeros."""
        keys = self._keys
        ids = list(dict.fromkeys(content_ids))
        if not ids:
            return {}
        by_partition: dict[int, list[str]] = {}
        for cid in ids:
            by_partition.setdefault(keys.partition(cid), []).append(cid)
        calls: list[Call] = []
        for cids in by_partition.values():
            names = [
                name
                for c in cids
                for name in (
                    keys.signal_ring(c),
                    keys.reactor_viewers(c),
                    keys.uniques(c),
                    keys.counters(c),
                )
            ]
            calls.append((names, []))
        replies = await self._read.run_many(self._r, calls)
        out: dict[str, RawSignals] = {}
        for cids, rows in zip(by_partition.values(), replies, strict=True):
            for cid, row in zip(cids, rows, strict=True):
                out[cid] = _raw_signals(row)
        return out

    async def signal_sums(self, content_ids: Sequence[str], now_ms: int) -> dict[str, Sums]:
        """Per content, domain.signals.sums of its stored signals at ``now_ms`` (one
        round trip: one script call per partition). A content never seen reads as
        zeros."""
        keys = self._keys
        by_partition: dict[int, list[str]] = {}
        for cid in dict.fromkeys(content_ids):
            by_partition.setdefault(keys.partition(cid), []).append(cid)
        if not by_partition:
            return {}
        current, into = divmod(now_ms, MINUTE_MS)
        args = (current, 0 if into else 1)
        calls: list[Call] = [
            (keys.signal_read_keys(p, cids), args) for p, cids in by_partition.items()
        ]
        replies = await self._read_sums.run_many(self._r, calls)
        out: dict[str, Sums] = {}
        parsed = self._parsed
        if len(parsed) > _PARSED_MAX:
            parsed.clear()
        for cids, rows in zip(by_partition.values(), replies, strict=True):
            for cid, (at, watch, likes, views, uniques, reacting, body) in zip(
                cids, rows, strict=True
            ):
                ring = parsed.get(body)
                if ring is None:
                    # str or bytes, as the client decodes replies or not.
                    sep = b"," if type(body) is bytes else ","
                    ring = parsed[body] = tuple(map(int, body.split(sep)))
                out[cid] = Sums(
                    None if at < 0 else at, watch, likes, views, uniques, reacting, ring
                )
        return out


# Parsed sums texts kept (a few MB at most); cleared whole when over.
_PARSED_MAX = 20_000


def _raw_signals(row: Sequence[Any]) -> RawSignals:
    at, watch, likes, views, uniques, reacting = (int(v) for v in row[:6])
    # Integer replies of the script: (minute, views, likes) per slot, flat.
    rest = row[6:]
    counts = map(Minute._make, zip(rest[1::3], rest[2::3], strict=True))
    minutes = dict(zip(rest[0::3], counts, strict=True))
    return RawSignals(
        minutes=minutes,
        likes=likes,
        views=views,
        unique_viewers=uniques,
        reacting_viewers=reacting,
        watch_ms=watch,
        updated_at_ms=None if at < 0 else at,
    )
