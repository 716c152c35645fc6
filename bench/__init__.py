"""The benchmark harness of `make bench` (see docs/performance.md)."""
