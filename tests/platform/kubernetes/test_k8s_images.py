"""Image pre-flight: references read as the runtime reads them, and a registry asked for
the manifest through the anonymous token flow (a fake registry over httpx's transport)."""

from __future__ import annotations

import httpx
import pytest

from harness.platform.kubernetes.images import (
    DOCKER_HUB,
    ImageRef,
    missing_images,
    parse_image,
    registry_has,
)


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("apache/airflow:3.3.2", ImageRef(DOCKER_HUB, "apache/airflow", "3.3.2")),
        ("postgres:16", ImageRef(DOCKER_HUB, "library/postgres", "16")),
        ("redis", ImageRef(DOCKER_HUB, "library/redis", "latest")),
        ("docker.io/apache/airflow:3.3.2", ImageRef(DOCKER_HUB, "apache/airflow", "3.3.2")),
        ("localhost:5001/ha-bench-airflow:1", ImageRef("localhost:5001", "ha-bench-airflow", "1")),
        ("ghcr.io/a/b/c:t", ImageRef("ghcr.io", "a/b/c", "t")),
        ("apache/airflow@sha256:" + "ab" * 32, ImageRef(DOCKER_HUB, "apache/airflow",
                                                        "sha256:" + "ab" * 32)),
    ],
)  # fmt: skip
def test_parse_image(image: str, ref: ImageRef) -> None:
    assert parse_image(image) == ref


def hub(tags: set[str], seen: list[httpx.Request]) -> httpx.Client:
    """Docker Hub's answers: 401 with a Bearer challenge, a token, then 200 or 404."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "auth.docker.io":
            assert request.url.params["scope"] == "repository:apache/airflow:pull"
            assert request.url.params["service"] == "registry.docker.io"
            return httpx.Response(200, json={"token": "t0k", "access_token": "t0k"})
        if request.headers.get("authorization") != "Bearer t0k":
            challenge = (
                'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                'scope="repository:apache/airflow:pull"'
            )
            return httpx.Response(401, headers={"www-authenticate": challenge})
        assert "manifest.list.v2+json" in request.headers["accept"]
        tag = request.url.path.rsplit("/", 1)[1]
        if tag in tags:
            return httpx.Response(200)
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_registry_has_the_tag_or_not_through_the_token_flow() -> None:
    seen: list[httpx.Request] = []
    client = hub({"3.3.2"}, seen)
    assert registry_has("apache/airflow:3.3.2", client=client) is True
    assert [r.method for r in seen] == ["HEAD", "GET", "HEAD"]
    assert str(seen[0].url) == "https://registry-1.docker.io/v2/apache/airflow/manifests/3.3.2"
    assert registry_has("apache/airflow:9.9.9", client=client) is False


def test_a_registry_that_cannot_answer_is_unknown_not_missing() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host", request=request)

    client = httpx.Client(transport=httpx.MockTransport(down))
    assert registry_has("apache/airflow:3.3.2", client=client) is None
    limited = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(429)))
    assert registry_has("apache/airflow:3.3.2", client=limited) is None


def test_missing_images_checks_the_nodes_first() -> None:
    asked: list[str] = []

    def registry(image: str) -> bool | None:
        asked.append(image)
        return {"apache/airflow:9.9.9": False, "postgres:16": None}.get(image, True)

    problems, notes = missing_images(
        ["apache/airflow:9.9.9", "postgres:16", "local/airflow:dev", "redis:7"],
        on_nodes=lambda image: image == "local/airflow:dev",  # kind load-ed
        in_registry=registry,
    )
    assert problems == [
        "image apache/airflow:9.9.9 does not exist in Docker Hub (no manifest '9.9.9')"
    ]
    assert notes == ["could not check image postgres:16 in Docker Hub"]
    assert "local/airflow:dev" not in asked
