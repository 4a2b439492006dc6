"""Publishing live messages straight into this process's hub (embedded mode)."""

from __future__ import annotations

from collections.abc import Mapping

from subscriptions.hub import LiveHub


class HubPublisher:
    """Publisher for the embedded mode: straight into the in-process broadcast."""

    def __init__(self, hub: LiveHub) -> None:
        self._hub = hub

    async def publish(self, messages: Mapping[str, str]) -> None:
        # In order: the live subscription relies on a user-channel message
        # reaching it before the counts published after it.
        for channel, message in messages.items():
            await self._hub.publish(channel, message)
