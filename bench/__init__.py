"""Benchmarks: `make bench` runs them against the real local platform and prints p50/p99."""
