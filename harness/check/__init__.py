"""Checkers over a history: task executions, hypotheses (SLOs). Imports only :mod:`harness.core`."""
