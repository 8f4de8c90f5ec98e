"""Benchmarks against the physical limit (issue 8): `bench/run`, never imported by the product."""
