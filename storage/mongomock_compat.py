"""mongomock 4.3 vs pymongo >= 4.11: ``bulk_write`` with UpdateOne/ReplaceOne.

pymongo 4.11 passes a new ``sort`` argument to the bulk builder, which mongomock
does not accept (mongomock issue 912), so every bulk update raised TypeError.
We accept ``sort=None`` (what UpdateOne/ReplaceOne without a sort send) and refuse
a real sort loudly instead of ignoring it. Applied only where mongomock is used.
"""

from __future__ import annotations

from typing import Any

import mongomock.collection as mc

_PATCHED = "_likeview_sort_compat"


def _without_sort(original: Any) -> Any:
    def call(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> Any:
        if sort is not None:
            raise NotImplementedError("mongomock cannot sort inside bulk updates")
        return original(self, *args, **kwargs)

    setattr(call, _PATCHED, True)
    return call


def patch_bulk_sort() -> None:
    builder = mc.BulkOperationBuilder
    for name in ("add_update", "add_replace"):
        method = getattr(builder, name)
        if not getattr(method, _PATCHED, False):
            setattr(builder, name, _without_sort(method))
