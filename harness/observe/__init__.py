"""Observers of a running cluster: open-loop probes, Locust load, the DAG workload driver."""
