"""The DAG workload: a driver that triggers and follows runs, and the benchmark DAGs."""

from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parent / "dags"
"""The benchmark DAG files a cluster deploys (the one source; the manifests read it too)."""
