"""Benchmarks of the package, each runnable as `python -m mer_lightning.bench.<name>`."""
