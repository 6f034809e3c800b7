"""Benchmarks: `python -m bench` (or `python bench/run.py`) prints one table of ratios measured
in the same run. See docs/performance.md for what each number means and the last results."""
