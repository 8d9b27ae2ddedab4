"""The open-loop HTTP prober (its own process) and ``ha-bench probe``."""
