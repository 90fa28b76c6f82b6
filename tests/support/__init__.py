"""What the tests and the benchmarks share, imported as ``tests.support`` by both."""
