"""Integrity detection, pure: an actor's windowed features, the rules read from a
TOML file (``DEFAULT_RULES_FILE`` next to this module, or a path from the
settings) by :func:`parse_integrity_rules`, and :func:`assess`, which turns the
features into a trust between 0 and 1 with the reasons that lowered it.

No I/O, no clock: the integrity worker (workers/integrity.py) keeps the features
(storage/redis_integrity.py) and hands them here. docs/INTEGRITY.md ("Detection")
explains every feature and rule.

Trust. Every rule that fires adds *points*: ``points`` when its feature reaches
``at``, rising linearly to ``full_points`` at ``full`` and staying there::

    points(v) = 0                                   v < at (or its `when` gate fails)
              = points + (full_points - points) * min(1, (v - at) / (full - at))

    P     = sum of the points of the rules that fired
    trust = max(0, 1 - (P / scale) ** exponent)     (scale 2, exponent 3 by default)

With the defaults one rule at its threshold (1 point) leaves 0.875 ("trusted"),
two independent ones (2 points) leave 0: combinations of signals exclude, one
signal near its threshold does not. A rule at its ``full`` value can carry two
points alone: only where no human reaches that value.

Address rules (``signal = "address"``) fire only when a behavioural rule fired
too: many people share one address (campuses, offices, carriers' NAT), so an
address never lowers trust on its own. This is structural, not configurable.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_RULES_FILE: str = "integrity_rules.toml"

BEHAVIOUR = "behaviour"
DEVICE = "device"
ADDRESS = "address"
SIGNALS = (BEHAVIOUR, DEVICE, ADDRESS)

ALL = "all"
USERS = "users"
ANONYMOUS = "anonymous"
APPLIES_TO = (ALL, USERS, ANONYMOUS)

TRUSTED = "trusted"
DOUBTFUL = "doubtful"
EXCLUDED = "excluded"


# --------------------------------------------------------------------------- features


@dataclass(frozen=True, slots=True)
class Features:
    """What the worker knows of one actor ("u:<user>" or "d:<device>").

    Counts are over the actor window (default the last 60 minutes, in 1-minute
    buckets); ``*_peak`` the most in any ``peak_ms`` (default 5 minutes) of
    consecutive buckets, so a pace that straddles a clock boundary is seen whole.
    Device and address aggregates
    are over the group window (default 24 hours), the largest among the devices
    and addresses the actor used in it.
    """

    actor: str
    peak_ms: int = 300_000
    # Reactions (signed-in actors only).
    likes: int = 0  # reactions added (none -> some)
    likes_peak: int = 0
    blind_likes: int = 0  # added on a content the actor had no view event of
    glance_likes: int = 0  # ... it had view events of, but no counted view
    unlikes: int = 0
    # Views.
    views: int = 0  # counted views
    views_peak: int = 0
    watch_ms_peak: int = 0  # accepted watch time in the busiest peak window, all sessions
    raw_events: int = 0  # view events (every heartbeat)
    impossible_events: int = 0  # flagged impossible by the session (watch > wall time, ...)
    visibility_events: int = 0  # events that carried visibleFraction
    invisible_events: int = 0  # ... below 0.05: an impression nobody could see
    positioned_events: int = 0  # events after a session's first with watch time and a position
    stalled_events: int = 0  # ... whose position did not pass the session's furthest
    segments: int = 0  # events after a session's first
    short_segments: int = 0  # ... that add 0 < watch < 1.5 s (a pause right after a play)
    sessions: int = 0  # sessions started
    max_content_sessions: int = 0  # most sessions on one content
    max_signature_repeats: int = 0  # most sessions of this actor with one playback shape
    # most sessions on one content started while its previous one there was live (had
    # played, had not ended, an event within 30 s): a page reloaded mid-playback
    max_content_reloads: int = 0
    # most addresses one of its sessions was sent again from, verbatim (replays)
    max_session_replays: int = 0
    signature_crowd: int = 0  # most actors sharing one of its playback signatures
    # Groups (group window).
    device_accounts: int = 0  # signed-in accounts seen on one of its devices
    device_recent_accounts: int = 0  # ... within one peak window (the most seen at once)
    address_accounts: int = 0  # signed-in accounts seen behind one of its addresses
    address_devices: int = 0  # anonymous devices seen behind one of its addresses
    # Cohorts (actor window): accounts that liked one of the contents it liked blind,
    # from the same address, blind too (no view event of it);
    blind_crowd: int = 0
    # devices behind one of its addresses that switched accounts within a peak
    # window (actor window), when one of them is its own.
    switching_devices: int = 0
    # anonymous devices whose only session (so far) was on the content of its only
    # session, from the same address (actor window), and those of them that stopped
    # at the count (ended within 0.3 of their time-to-count after counting).
    one_off_crowd: int = 0
    one_off_hugging: int = 0

    @property
    def anonymous(self) -> bool:
        return self.actor.startswith("d:")

    @property
    def watch_overlap(self) -> float:
        """Watch time per wall time in the busiest peak window: 1.0 is one screen all
        along."""
        return self.watch_ms_peak / self.peak_ms if self.peak_ms > 0 else 0.0

    @property
    def blind_like_share(self) -> float:
        return self.blind_likes / self.likes if self.likes else 0.0

    @property
    def one_off_hug_share(self) -> float:
        """Of the one-off devices on its content and address, the share that stopped
        at the count."""
        return min(1.0, self.one_off_hugging / self.one_off_crowd) if self.one_off_crowd else 0.0

    @property
    def glance_like_share(self) -> float:
        """Of its likes on contents it opened, the share its view never counted for."""
        opened = self.likes - self.blind_likes
        return min(1.0, self.glance_likes / opened) if opened > 0 else 0.0

    @property
    def no_progress_events(self) -> int:
        return self.stalled_events + self.invisible_events

    @property
    def no_progress_share(self) -> float:
        base = self.positioned_events + self.visibility_events
        return self.no_progress_events / base if base else 0.0

    @property
    def play_pause_share(self) -> float:
        return self.short_segments / self.segments if self.segments else 0.0

    def value(self, name: str) -> float:
        return float(getattr(self, name))


_DERIVED = (
    "watch_overlap",
    "blind_like_share",
    "glance_like_share",
    "one_off_hug_share",
    "no_progress_events",
    "no_progress_share",
    "play_pause_share",
)
FEATURE_NAMES: tuple[str, ...] = (
    *(f.name for f in fields(Features) if f.name not in {"actor", "bucket_ms"}),
    *_DERIVED,
)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # the reason code
    feature: str
    signal: str  # BEHAVIOUR, DEVICE or ADDRESS
    at: float
    points: float
    full: float
    full_points: float
    applies_to: str = ALL
    when: Mapping[str, float] = field(default_factory=dict)  # feature -> at least

    def applies(self, features: Features) -> bool:
        if self.applies_to == USERS and features.anonymous:
            return False
        if self.applies_to == ANONYMOUS and not features.anonymous:
            return False
        return all(features.value(f) >= least for f, least in self.when.items())

    def score(self, value: float) -> float:
        """Points for a feature value (0 below ``at``)."""
        if value < self.at:
            return 0.0
        if self.full <= self.at:
            return self.full_points
        ramp = min(1.0, (value - self.at) / (self.full - self.at))
        return self.points + (self.full_points - self.points) * ramp

    def breakpoints(self) -> tuple[float, float]:
        return self.at, self.full


@dataclass(frozen=True, slots=True)
class Windows:
    bucket_minutes: int = 1
    peak_minutes: int = 5
    actor_minutes: int = 60
    group_hours: int = 24

    @property
    def bucket_ms(self) -> int:
        return self.bucket_minutes * 60_000

    @property
    def peak_ms(self) -> int:
        return self.peak_minutes * 60_000

    @property
    def actor_ms(self) -> int:
        return self.actor_minutes * 60_000

    @property
    def group_ms(self) -> int:
        return self.group_hours * 3_600_000


@dataclass(frozen=True, slots=True)
class IntegrityRules:
    rules: tuple[Rule, ...]
    exclude_below: float = 0.3
    confident_at: float = 0.8
    scale: float = 2.0
    exponent: float = 3.0
    windows: Windows = Windows()

    def tier(self, trust: float) -> str:
        if trust < self.exclude_below:
            return EXCLUDED
        if trust >= self.confident_at:
            return TRUSTED
        return DOUBTFUL

    def on(self, feature: str) -> tuple[Rule, ...]:
        """The rules that read ``feature``, directly."""
        return tuple(r for r in self.rules if r.feature == feature)

    def gated_by(self, feature: str) -> tuple[Rule, ...]:
        """The rules whose ``when`` reads ``feature``."""
        return tuple(r for r in self.rules if feature in r.when)


@dataclass(frozen=True, slots=True)
class Assessment:
    trust: float
    reasons: tuple[str, ...]  # the rules that lowered it, most points first
    evidence: dict[str, int | float | str]


@dataclass(frozen=True, slots=True)
class ActorAssessment:
    """What the enforcer is told about one actor (domain.ports.Enforcer)."""

    actor: str
    trust: float
    reasons: tuple[str, ...]
    evidence: Mapping[str, int | float | str]


def trust_of(points: float, rules: IntegrityRules) -> float:
    if points <= 0:
        return 1.0
    return max(0.0, 1.0 - (points / rules.scale) ** rules.exponent)


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(v, 4)


def assess(features: Features, rules: IntegrityRules) -> Assessment:
    """The actor's trust under the rules, the rules that lowered it and their evidence."""
    fired: list[tuple[float, Rule, float]] = []
    for rule in rules.rules:
        if rule.signal == ADDRESS or not rule.applies(features):
            continue
        value = features.value(rule.feature)
        pts = rule.score(value)
        if pts > 0:
            fired.append((pts, rule, value))
    if any(r.signal == BEHAVIOUR for _, r, _ in fired):
        # Address rules only ever add to a behavioural signal.
        for rule in rules.rules:
            if rule.signal != ADDRESS or not rule.applies(features):
                continue
            value = features.value(rule.feature)
            pts = rule.score(value)
            if pts > 0:
                fired.append((pts, rule, value))
    fired.sort(key=lambda item: (-item[0], item[1].name))
    total = sum(p for p, _, _ in fired)
    trust = round(trust_of(total, rules), 6)
    evidence: dict[str, int | float | str] = {}
    for _, rule, value in fired:
        evidence[rule.feature] = _number(value)
    if fired:
        evidence["points"] = round(total, 4)
    return Assessment(trust, tuple(r.name for _, r, _ in fired), evidence)


# --------------------------------------------------------------------------- parsing

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RULE_KEYS = frozenset(
    {"feature", "signal", "at", "points", "full", "full_points", "applies_to", "when"}
)
_TRUST_KEYS = frozenset({"exclude_below", "confident_at", "scale", "exponent"})
_WINDOW_KEYS = frozenset({"bucket_minutes", "peak_minutes", "actor_minutes", "group_hours"})
_TOP_KEYS = frozenset({"trust", "windows", "rules"})


def _err(message: str) -> ValueError:
    return ValueError(f"integrity rules: {message}")


def _num(value: Any, where: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        bounds = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise _err(f"{where} must be a number {bounds}, got {value!r}")
    return float(value)


def _int(value: Any, where: str, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _err(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def _table(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _err(f"{where} must be a table, got {value!r}")
    for key in value:
        if key not in allowed:
            raise _err(f"unknown key {where}.{key!r}; expected one of {', '.join(sorted(allowed))}")
    return value


def _feature(value: Any, where: str) -> str:
    if value not in FEATURE_NAMES:
        raise _err(f"{where} must name a feature ({', '.join(FEATURE_NAMES)}), got {value!r}")
    return str(value)


def _rule(name: str, table: Any) -> Rule:
    where = f"rules.{name}"
    if not _NAME.match(name):
        raise _err(f"rule name {name!r} must be lower_snake_case (it is the reason code)")
    t = _table(table, where, _RULE_KEYS)
    for key in ("feature", "signal", "at", "points"):
        if key not in t:
            raise _err(f"{where} needs {key!r}")
    signal = t["signal"]
    if signal not in SIGNALS:
        raise _err(f"{where}.signal must be one of {', '.join(map(repr, SIGNALS))}, got {signal!r}")
    applies_to = t.get("applies_to", ALL)
    if applies_to not in APPLIES_TO:
        raise _err(
            f"{where}.applies_to must be one of {', '.join(map(repr, APPLIES_TO))}, "
            f"got {applies_to!r}"
        )
    at = _num(t["at"], f"{where}.at")
    points = _num(t["points"], f"{where}.points")
    full = _num(t.get("full", at), f"{where}.full")
    full_points = _num(t.get("full_points", points), f"{where}.full_points")
    if full < at:
        raise _err(f"{where}.full ({full:g}) must be >= at ({at:g})")
    if full_points < points:
        raise _err(f"{where}.full_points ({full_points:g}) must be >= points ({points:g})")
    if at <= 0:
        raise _err(f"{where}.at must be > 0: a rule that fires on nothing fires on everyone")
    when_raw = t.get("when", {})
    if not isinstance(when_raw, dict):
        raise _err(f"{where}.when must be a table of feature = minimum, got {when_raw!r}")
    when = {
        _feature(f, f"{where}.when key"): _num(v, f"{where}.when.{f}") for f, v in when_raw.items()
    }
    return Rule(
        name=name,
        feature=_feature(t["feature"], f"{where}.feature"),
        signal=signal,
        at=at,
        points=points,
        full=full,
        full_points=full_points,
        applies_to=applies_to,
        when=when,
    )


def parse_integrity_rules(text: str) -> IntegrityRules:
    """Parse the TOML rules file (see ``integrity_rules.toml``); ValueError names what is wrong."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _err(f"invalid TOML: {exc}") from exc
    for key in doc:
        if key not in _TOP_KEYS:
            raise _err(f"unknown table {key!r}; expected one of {', '.join(sorted(_TOP_KEYS))}")
    trust = _table(doc.get("trust", {}), "trust", _TRUST_KEYS)
    exclude_below = _num(trust.get("exclude_below", 0.3), "trust.exclude_below", high=1.0)
    confident_at = _num(trust.get("confident_at", 0.8), "trust.confident_at", high=1.0)
    if not exclude_below < confident_at:
        raise _err(
            f"trust.exclude_below ({exclude_below:g}) must be below "
            f"trust.confident_at ({confident_at:g})"
        )
    scale = _num(trust.get("scale", 2.0), "trust.scale")
    exponent = _num(trust.get("exponent", 3.0), "trust.exponent")
    if scale <= 0 or exponent <= 0:
        raise _err("trust.scale and trust.exponent must be > 0")
    win = _table(doc.get("windows", {}), "windows", _WINDOW_KEYS)
    windows = Windows(
        bucket_minutes=_int(win.get("bucket_minutes", 1), "windows.bucket_minutes"),
        peak_minutes=_int(win.get("peak_minutes", 5), "windows.peak_minutes"),
        actor_minutes=_int(win.get("actor_minutes", 60), "windows.actor_minutes"),
        group_hours=_int(win.get("group_hours", 24), "windows.group_hours"),
    )
    if windows.peak_minutes % windows.bucket_minutes:
        raise _err("windows.peak_minutes must be a multiple of windows.bucket_minutes")
    if windows.actor_minutes % windows.peak_minutes:
        raise _err("windows.actor_minutes must be a multiple of windows.peak_minutes")
    raw_rules = doc.get("rules", {})
    if not isinstance(raw_rules, dict) or not raw_rules:
        raise _err("[rules] must hold at least one rule table ([rules.<name>])")
    rules = tuple(_rule(name, table) for name, table in raw_rules.items())
    return IntegrityRules(
        rules=rules,
        exclude_below=exclude_below,
        confident_at=confident_at,
        scale=scale,
        exponent=exponent,
        windows=windows,
    )
