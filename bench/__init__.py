"""Benchmarks of `retention run` against hand-written set-based SQL (`python -m bench.run`).

A template database at the seed scale is generated once with the demo generator, then cloned
(`CREATE DATABASE ... TEMPLATE`) into two identical copies per measurement: one for the
hand-written SQL, one for `retention run` in a subprocess. Results go to `bench/data/`.
"""
