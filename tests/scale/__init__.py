"""The scale benchmark of `make bench` (tests/bench.py runs it): scenarios against the local
control plane, what they measure, and the report."""
