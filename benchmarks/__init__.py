"""Benchmark suite of micrograd_fast: ``python -m benchmarks --help``.

Compares the compiled core (``micrograd_fast``), the pure-Python twin
(``reference``), upstream micrograd (``micrograd``) and PyTorch (``torch``)
on the same workloads, each engine and workload in a fresh interpreter.
"""
