"""Checkers over a history: task executions (``executions``: the ledger checker the runner
calls; ``history``: execution intervals and API state sequences; ``checkers``: composable
checkers and ``check_repetition``, with ``states`` (the checkers of the API's task states)
and ``findings`` (what their findings share); ``offline``: ``ha-bench check``), hypotheses
(SLOs). Imports only :mod:`harness.core`."""
