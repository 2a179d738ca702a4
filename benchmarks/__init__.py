"""`make bench`: figures any maintainer can reproduce with one command (see docs/benchmarks.md)."""
