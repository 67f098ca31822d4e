"""Benchmarks: each prints its figures and the reference it is measured against in the same run."""
