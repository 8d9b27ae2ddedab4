"""The ``kubernetes`` platform: the local platform's Cluster and Nemesis on a kube context.

- :mod:`.safety` — context allow-list, namespace/selector scope, the guarded API
- :mod:`.api` — the thin adapter over the ``kubernetes`` client (plain dicts in and out)
- :mod:`.events` — pod / EndpointSlice watch events → ``lifecycle`` events, replica slots
- :mod:`.recovery` — recovery times of replaced pods from recorded events
- :mod:`.manifests` — render (``kubectl kustomize``) and patch from the Topology
- :mod:`.nemesis` — faults through the API
- :mod:`.cluster` — :class:`KubernetesCluster` (``owned`` / ``existing`` mode)
- :mod:`.kind` — ``kind_up`` / ``kind_down``

Only :mod:`.api` and :mod:`.cluster` (its threads and children) touch the outside world.
"""
