"""Pre-flight: does every image the manifests name exist where the nodes pull it from?

A tag that does not exist is otherwise a pull error minutes into a bring-up. For each
image: on kind, the node's containerd may have it already (``kind load``, or an earlier
pull), which is enough with ``imagePullPolicy: IfNotPresent``; else its registry is asked
for the manifest (``HEAD /v2/<repository>/manifests/<tag>``, with the anonymous bearer
token a registry offers on 401, as Docker Hub does). Only a definite "no such manifest"
(404, or a registry error ``MANIFEST_UNKNOWN``/``NAME_UNKNOWN``) stops the bring-up; a
registry that cannot be reached is noted and the bring-up goes on (its diagnostics then
report a pull error within seconds).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

DOCKER_HUB = "registry-1.docker.io"
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    reference: str  # a tag or a digest

    @property
    def manifest_path(self) -> str:
        return f"/v2/{self.repository}/manifests/{self.reference}"


def parse_image(image: str) -> ImageRef:
    """``apache/airflow:3.3.2`` -> (registry-1.docker.io, apache/airflow, 3.3.2), as the
    container runtime reads a reference (a first part with ``.``/``:`` or ``localhost``
    is a registry; Docker Hub's official images are ``library/<name>``)."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    if registry == "docker.io":
        registry = DOCKER_HUB
    slash, colon = path.rfind("/"), path.rfind(":")
    repository, tag = (path[:colon], path[colon + 1 :]) if colon > slash else (path, "latest")
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageRef(registry, repository, digest or tag)


def _scheme(registry: str) -> str:
    host = registry.rsplit(":", 1)[0]
    return "http" if host in ("localhost", "127.0.0.1") else "https"


def registry_has(
    image: str, *, timeout_s: float = 10.0, client: httpx.Client | None = None
) -> bool | None:
    """True if the registry has the manifest, False if it says it does not, None if it
    cannot be told (unreachable, refused, rate-limited)."""
    ref = parse_image(image)
    url = f"{_scheme(ref.registry)}://{ref.registry}{ref.manifest_path}"
    own = client is None
    http = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
    try:
        resp = http.head(url, headers={"Accept": ACCEPT})
        if resp.status_code == 401:
            token = _anonymous_token(http, resp.headers.get("www-authenticate", ""), ref)
            if token is None:
                return None
            resp = http.head(url, headers={"Accept": ACCEPT, "Authorization": f"Bearer {token}"})
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        return None
    except httpx.HTTPError:
        return None
    finally:
        if own:
            http.close()


def _anonymous_token(http: httpx.Client, challenge: str, ref: ImageRef) -> str | None:
    """The registry token flow: ``Bearer realm=...,service=...`` -> an anonymous pull token."""
    if not challenge.lower().startswith("bearer"):
        return None
    params = dict(_CHALLENGE.findall(challenge))
    realm = params.pop("realm", None)
    if not realm:
        return None
    params.setdefault("scope", f"repository:{ref.repository}:pull")
    resp = http.get(realm, params=params)
    if resp.status_code != 200:
        return None
    body = resp.json()
    return body.get("token") or body.get("access_token")


def missing_images(
    images: Iterable[str],
    *,
    on_nodes: Callable[[str], bool | None] | None = None,
    in_registry: Callable[[str], bool | None] = registry_has,
) -> tuple[list[str], list[str]]:
    """(problems, notes): an image neither on the nodes nor in its registry is a problem;
    one that could not be checked is a note."""
    problems, notes = [], []
    for image in sorted(set(images)):
        if on_nodes is not None and on_nodes(image):
            continue
        found = in_registry(image)
        ref = parse_image(image)
        where = "Docker Hub" if ref.registry == DOCKER_HUB else ref.registry
        if found is False:
            problems.append(
                f"image {image} does not exist in {where} (no manifest {ref.reference!r})"
            )
        elif found is None:
            notes.append(f"could not check image {image} in {where}")
    return problems, notes
