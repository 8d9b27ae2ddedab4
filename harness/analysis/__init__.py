"""Figures from a history: outages, recovery, scheduling, health, curves, statistics.

Imports only :mod:`harness.core`.
"""
