"""Benchmarks of ``devpi warmup`` against the ``pip download`` loop it replaces.

One job per module: ``support`` (the project's test helpers reused here), ``log`` (progress
lines), ``matrix`` (targets and their markers), ``measure`` (a command's process tree: wall, CPU,
peak RSS), ``commands`` (the contenders' command lines), ``servers`` (devpi-servers and the local
upstream), ``corpus`` (the local file corpus and the lock files), ``contenders`` (each contender
cold and again on a fresh devpi) and ``report`` (tables, ratios, goals, min / median / max).
``benchmarks/bench.py``, ``seed.py``, ``large.py`` and ``make_lock.py`` are the command lines.
"""
