"""The ``kubernetes`` platform: the local platform's Cluster and Nemesis on a kube context.

- :mod:`.safety` — context allow-list, namespace/selector scope, the guarded API
- :mod:`.api` — the thin adapter over the ``kubernetes`` client (plain dicts in and out;
  exec status read from its status channel)
- :mod:`.events` — pod / EndpointSlice watch events → ``lifecycle`` events, replica slots
- :mod:`.pods` — what a pod / EndpointSlice object says (the facts the tracker compares)
- :mod:`.manifests` — render (``kubectl kustomize``) and patch from the Topology
- :mod:`.images` — pre-flight: every image on the nodes or in its registry
- :mod:`.diagnostics` — bring-up problems, requests, the evidence kept before a delete
- :mod:`.namespaces` — owner/expiry leases on owned namespaces, stale ones removed
- :mod:`.nemesis` — faults: ``kill`` (a real SIGKILL), ``force_delete``, ``terminate``,
  ``evict``, ``pause``/``resume``, ``stop_service``/``start_service``
- :mod:`.portforward` — ``kubectl port-forward`` children, liveness by traffic
- :mod:`.cluster` — :class:`KubernetesCluster` (``owned`` / ``existing`` mode), made of
  :mod:`.bringup` (apply or adopt, pre-flight, wait until ready), :mod:`.ledger` (the
  ledger round trip and reads), :mod:`.access` (the URLs, the port-forwards' upkeep),
  :mod:`.teardown` (the evidence, the namespace kept or deleted) and :mod:`.watch` (a
  watch stream kept up)
- :mod:`.kind` — ``kind_up`` / ``kind_down``, a kind node's container runtime
- :mod:`.recorder` — live watch streams in the fixture format (the nightly)

Only :mod:`.api`, :mod:`.images`, :mod:`.kind`, :mod:`.portforward` and :mod:`.cluster`
with its parts (its threads and children) touch the outside world.
"""
