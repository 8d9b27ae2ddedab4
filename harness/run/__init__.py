"""Experiments as data files, the catalogue, the runner and the suite."""
