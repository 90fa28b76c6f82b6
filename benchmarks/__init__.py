"""Rerunnable benchmarks; their figures are recorded in docs/benchmarks.md."""
