"""Locust load in its own (gevent) process, one history row per request."""
