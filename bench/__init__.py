"""Benchmarks: the city-scale data generator (seed.py) and the page benchmark (pages.py)."""
