"""The bucket cache: a part is served only at the version it was read at, and the
least recently used go first."""

from __future__ import annotations

import pytest

from storage.bucket_cache import BucketCache

A = ("analytics_day", "c:x|0", ("views",))
B = ("analytics_day", "c:x|86400000", ("views",))
A_ALL = ("analytics_day", "c:x|0", None)


@pytest.mark.parametrize(
    ("stored", "asked", "served"),
    [
        ("v1", "v1", True),
        ("v1", "v2", False),  # rewritten since
        ("v1", None, False),  # the bucket has no version (written before versions)
        (None, None, False),  # never stored without a version
    ],
)
def test_served_only_at_its_version(stored, asked, served):
    cache = BucketCache(10)
    doc = {"views": 3}
    cache.put(A, stored, doc)
    assert (cache.get(A, asked) is doc) is served


def test_the_parts_read_are_part_of_the_key():
    cache = BucketCache(10)
    cache.put(A, "v1", {"views": 3})
    assert cache.get(A_ALL, "v1") is None
    assert A in cache and A_ALL not in cache


def test_a_newer_version_replaces_the_older():
    cache = BucketCache(10)
    cache.put(A, "v1", {"views": 3})
    cache.put(A, "v2", {"views": 4})
    assert cache.get(A, "v1") is None
    assert cache.get(A, "v2") == {"views": 4}
    assert len(cache) == 1


def test_least_recently_used_go_first():
    cache = BucketCache(2)
    cache.put(A, "v1", {"views": 1})
    cache.put(B, "v1", {"views": 2})
    assert cache.get(A, "v1") is not None  # A is now the most recent
    cache.put(A_ALL, "v1", {"views": 3})
    assert B not in cache
    assert A in cache and A_ALL in cache


def test_zero_entries_is_off():
    cache = BucketCache(0)
    cache.put(A, "v1", {"views": 1})
    assert not cache.enabled
    assert len(cache) == 0 and cache.get(A, "v1") is None
