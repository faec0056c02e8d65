"""Benchmarks (``splitinf bench …``): each prints a readable report and, with ``--json``, one JSON line last."""
