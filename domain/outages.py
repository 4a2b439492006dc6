"""Which exceptions mean "a store did not answer", without the domain importing a driver.

The storage layer registers its drivers' connection and timeout errors
(storage/outages.py); the use cases ask ``is_outage`` where they can go on
without Redis, and the API layer turns whatever is left into ``Unavailable``
(one place: schema/errors.py), so a client gets ``UNAVAILABLE``, never a trace.
"""

from __future__ import annotations

from domain.errors import Unavailable

_KINDS: dict[type[BaseException], str] = {}


def register(store: str, *kinds: type[BaseException]) -> None:
    for kind in kinds:
        _KINDS[kind] = store


def store_of(exc: BaseException) -> str | None:
    """The store (``"redis"``, ``"mongodb"``) whose outage ``exc`` is, else None."""
    for kind, store in _KINDS.items():
        if isinstance(exc, kind):
            return store
    return None


def is_outage(exc: BaseException) -> bool:
    return store_of(exc) is not None


def as_unavailable(exc: BaseException) -> Unavailable | None:
    store = store_of(exc)
    if store is None:
        return None
    return Unavailable(f"{store} is unavailable; retry shortly")
