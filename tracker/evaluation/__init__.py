"""Benchmarking: dataset runs, metrics, peers, reports and plots."""
