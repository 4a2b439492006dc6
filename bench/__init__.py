"""Likeview load and latency suite (bench-only code; not served by the product).

Run: ``bash bench/run.sh [--quick] [--scenario N ...] [--profile]``; see docs/PERFORMANCE.md.
"""
