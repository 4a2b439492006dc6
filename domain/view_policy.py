"""View policies: per content kind, and optionally per client platform, what
counts as a view (the rule, its thresholds, the dedupe scope and window), read
from a TOML file (``DEFAULT_POLICY_FILE`` next to this module, or a path from the
settings) by :func:`parse_policy_book`. Pure: no I/O.

How a session is decided under a policy is domain.view_sessions.
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from domain.contents import ContentKind

DEFAULT_POLICY_FILE: str = "view_policies.toml"


class ViewSource(enum.StrEnum):
    FEED = "FEED"
    SEARCH = "SEARCH"
    PROFILE = "PROFILE"
    NOTIFICATION = "NOTIFICATION"
    EXTERNAL = "EXTERNAL"
    DIRECT = "DIRECT"
    AUTOPLAY = "AUTOPLAY"


class ClientPlatform(enum.StrEnum):
    IOS = "IOS"
    ANDROID = "ANDROID"
    WEB = "WEB"
    TV = "TV"
    EMBEDDED = "EMBEDDED"


class DedupeScope(enum.StrEnum):
    VIEWER = "viewer"
    DEVICE = "device"
    SESSION = "session"


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True, slots=True)
class ViewPolicy:
    rule: str
    min_watch_ms: int
    short_content_fraction: float | None = None
    min_visible_fraction: float | None = None
    count_on_open: bool = False
    dedupe: DedupeScope = DedupeScope.VIEWER
    window: timedelta = timedelta(hours=24)
    clock_slack_ms: int = 5_000
    position_tolerance_ms: int = 2_000

    def threshold_ms(self, duration_ms: int | None) -> int:
        """Qualifying watch time needed; 0 for count-on-open policies."""
        if self.count_on_open:
            return 0
        if (
            self.short_content_fraction is not None
            and duration_ms is not None
            and 0 < duration_ms < self.min_watch_ms
        ):
            return max(0, math.ceil(duration_ms * self.short_content_fraction - 1e-9))
        return self.min_watch_ms


@dataclass(frozen=True)
class PolicyBook:
    policies: Mapping[ContentKind, ViewPolicy]
    platform_policies: Mapping[tuple[ContentKind, ClientPlatform], ViewPolicy] = field(
        default_factory=dict
    )

    def for_content(self, kind: ContentKind, platform: ClientPlatform | None) -> ViewPolicy:
        """The platform specialisation when there is one, else the kind's policy."""
        kind = ContentKind(kind)
        if platform is not None:
            special = self.platform_policies.get((kind, ClientPlatform(platform)))
            if special is not None:
                return special
        try:
            return self.policies[kind]
        except KeyError:
            raise ValueError(f"no view policy for content kind {kind}") from None


_INT_KEYS = ("min_watch_ms", "clock_slack_ms", "position_tolerance_ms")
_FRACTION_KEYS = ("short_content_fraction", "min_visible_fraction")
_POLICY_KEYS = frozenset({*_INT_KEYS, *_FRACTION_KEYS, "count_on_open", "dedupe", "window_hours"})
_BUILTIN_DEFAULTS: dict[str, Any] = {
    "dedupe": "viewer",
    "window_hours": 24,
    "clock_slack_ms": 5_000,
    "position_tolerance_ms": 2_000,
}


def _check_fields(table: Any, where: str, *, allow_platforms: bool) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ValueError(f"view policies: {where} must be a table, got {table!r}")
    allowed = _POLICY_KEYS | ({"platforms"} if allow_platforms else set())
    for key, value in table.items():
        name = f"{where}.{key}"
        if key not in allowed:
            raise ValueError(
                f"view policies: unknown key {name!r}; expected one of {', '.join(sorted(allowed))}"
            )
        if key in _INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"view policies: {name} must be an integer >= 0, got {value!r}")
        elif key in _FRACTION_KEYS:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(
                    f"view policies: {name} must be a number between 0 and 1, got {value!r}"
                )
        elif key == "count_on_open":
            if not isinstance(value, bool):
                raise ValueError(f"view policies: {name} must be true or false, got {value!r}")
        elif key == "dedupe":
            if value not in {s.value for s in DedupeScope}:
                raise ValueError(
                    f"view policies: {name} must be one of "
                    f"{', '.join(repr(s.value) for s in DedupeScope)}, got {value!r}"
                )
        elif key == "window_hours" and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"view policies: {name} must be a number > 0, got {value!r}")
    return {k: v for k, v in table.items() if k != "platforms"}


def _build_policy(rule: str, where: str, fields: Mapping[str, Any]) -> ViewPolicy:
    count_on_open = bool(fields.get("count_on_open", False))
    if "min_watch_ms" not in fields and not count_on_open:
        raise ValueError(f"view policies: {where} needs min_watch_ms (or count_on_open = true)")
    short = fields.get("short_content_fraction")
    visible = fields.get("min_visible_fraction")
    return ViewPolicy(
        rule=rule,
        min_watch_ms=int(fields.get("min_watch_ms", 0)),
        short_content_fraction=None if short is None else float(short),
        min_visible_fraction=None if visible is None else float(visible),
        count_on_open=count_on_open,
        dedupe=DedupeScope(fields["dedupe"]),
        window=timedelta(hours=fields["window_hours"]),
        clock_slack_ms=int(fields["clock_slack_ms"]),
        position_tolerance_ms=int(fields["position_tolerance_ms"]),
    )


def parse_policy_book(text: str) -> PolicyBook:
    """Parse the TOML policy file (see ``view_policies.toml``); ValueError names what is wrong."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"view policies: invalid TOML: {exc}") from exc
    kinds = {k.value for k in ContentKind}
    for key in doc:
        if key != "defaults" and key not in kinds:
            raise ValueError(
                f"view policies: unknown content kind {key!r}; expected one of "
                f"{', '.join(k.value for k in ContentKind)} (or 'defaults')"
            )
    missing = [k.value for k in ContentKind if k.value not in doc]
    if missing:
        raise ValueError(f"view policies: no policy for content kind(s) {', '.join(missing)}")
    defaults = {
        **_BUILTIN_DEFAULTS,
        **_check_fields(doc.get("defaults", {}), "defaults", allow_platforms=False),
    }
    policies: dict[ContentKind, ViewPolicy] = {}
    specials: dict[tuple[ContentKind, ClientPlatform], ViewPolicy] = {}
    for kind in ContentKind:
        table = doc[kind.value]
        base = {**defaults, **_check_fields(table, kind.value, allow_platforms=True)}
        policies[kind] = _build_policy(f"{kind.value}.default", kind.value, base)
        platforms = table.get("platforms", {})
        if not isinstance(platforms, dict):
            raise ValueError(f"view policies: {kind.value}.platforms must be a table")
        for name, override in platforms.items():
            where = f"{kind.value}.platforms.{name}"
            if name not in {p.value for p in ClientPlatform}:
                raise ValueError(
                    f"view policies: unknown platform {where!r}; expected one of "
                    f"{', '.join(p.value for p in ClientPlatform)}"
                )
            merged = {**base, **_check_fields(override, where, allow_platforms=False)}
            platform = ClientPlatform(name)
            specials[(kind, platform)] = _build_policy(f"{kind.value}.{name}", where, merged)
    return PolicyBook(policies=policies, platform_policies=specials)
