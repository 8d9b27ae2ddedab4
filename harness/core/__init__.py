"""Foundations every role shares: errors, clocks, topology, events, history, ledger rows."""
