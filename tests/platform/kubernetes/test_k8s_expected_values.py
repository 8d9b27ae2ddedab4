"""Expected values the platform decides are stated per platform in the experiment files,
and the Kubernetes ones follow from the manifests' probe settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.run.catalogue import build

ROOT = Path(__file__).resolve().parents[3]


def readiness() -> dict[str, int]:
    docs = yaml.safe_load_all((ROOT / "manifests" / "base" / "api-server.yaml").read_text())
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]


def hypotheses(name: str, platform: str, **params: object) -> list[tuple[str, str, object]]:
    experiment = build(name, dict(params), platform=platform)
    return [(h.metric, h.op, h.value) for h in experiment.hypotheses]


def test_api_server_pause_expects_haproxy_locally_and_kube_proxy_on_kubernetes():
    assert hypotheses("api-server-pause", "local") == [("downtime_s", "<=", 2.0)]
    assert hypotheses("api-server-pause", "kubernetes") == [
        ("downtime_s", "<=", 12.0),
        ("downtime_s", ">=", 2.0),
    ]
    # a hold longer than readiness needs: only the upper bound is stated
    assert hypotheses("api-server-pause", "kubernetes", hold_s=45.0) == [("downtime_s", "<=", 47.0)]


def test_the_kubernetes_out_of_endpoints_time_is_the_manifests_readiness():
    """A hung pod's probes each take timeoutSeconds and do not overlap, so NotReady comes
    failureThreshold x max(timeout, period) after it stopped answering."""
    probe = readiness()
    assert (probe["periodSeconds"], probe["timeoutSeconds"], probe["failureThreshold"]) == (
        5,
        10,
        3,
    )
    out_after = probe["failureThreshold"] * max(probe["timeoutSeconds"], probe["periodSeconds"])
    spec = yaml.safe_load((ROOT / "harness/run/experiments/api-server-pause.yaml").read_text())
    assert float(spec["vars"]["k8s_out_after_s"]) == out_after
    why = build("api-server-pause", {}, platform="kubernetes").hypotheses[1].why
    assert "period 5 s, timeout 10 s, threshold 3" in why and "kube-proxy" in why


def test_api_server_kill_of_one_of_two_names_kube_proxy_on_kubernetes():
    assert ("downtime_s", "<=", 1.0) in hypotheses("api-server-kill", "local")
    kubernetes = build("api-server-kill", {}, platform="kubernetes").hypotheses
    first = kubernetes[0]
    assert (first.metric, first.op, first.value) == ("downtime_s", "<=", 2.0)
    assert "kube-proxy does not retry" in kubernetes[0].why
    # no replica left: the same expectation on both platforms
    assert hypotheses("api-server-kill", "kubernetes", api_servers=1) == hypotheses(
        "api-server-kill", "local", api_servers=1
    )
