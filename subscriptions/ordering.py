"""What a live subscriber shows next for one content (pure).

A subscriber remembers, per content, the counters version and the summary it
last showed. A push is one snapshot: counters of one version, and the viewer's
reaction as of those counters. It never goes back to an older version and is
never sent twice unchanged.

``own_pending`` marks a summary that adds the viewer's own events the
aggregator has not applied yet (read-your-writes, as the like response does).
Counts published later may still lack those events, so while it is set a
newer counts message is not shown as it is: the subscriber re-reads instead.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from domain.summary import Summary


class Shown(NamedTuple):
    # A tuple rather than a frozen dataclass: one is built per subscriber per
    # push, and a tuple is built several times faster.
    version: int
    summary: Summary
    own_pending: bool = False


class Step(enum.Enum):
    DROP = "drop"
    SHOW = "show"
    REREAD = "reread"


def newer(shown_version: int, incoming_version: int) -> bool:
    return incoming_version > shown_version


def on_counts(shown: Shown, incoming_version: int) -> Step:
    """What to do with a counts message of ``incoming_version``."""
    if not newer(shown.version, incoming_version):
        return Step.DROP
    if shown.own_pending:
        return Step.REREAD
    return Step.SHOW


def accepts_read(shown: Shown, read_version: int) -> bool:
    """A fresh read may repeat the version shown (the viewer's reaction may be
    all that changed), never go below it."""
    return read_version >= shown.version


def advance(
    shown: Shown, version: int, summary: Summary, own_pending: bool = False
) -> tuple[Shown, bool]:
    """The new state after an accepted snapshot, and whether to push it."""
    changed = summary != shown.summary
    kept = summary if changed else shown.summary
    newest = version if version > shown.version else shown.version
    return Shown(newest, kept, own_pending), changed
