"""Benchmarks at district scale: every hot path as a ratio against the raw database, in one run (``python -m bench``)."""
