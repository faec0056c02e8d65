"""Implementations of the ``splitinf`` subcommands that are neither benchmarks nor services."""
