"""Benchmarks that print numbers: `python -m bench --help`. Not part of the test suite."""
