"""airflow-ha-bench: chaos-testing and failover benchmarks for Apache Airflow HA."""

__version__ = "0.1.0"
