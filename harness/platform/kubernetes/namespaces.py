"""Leases on the namespaces the harness makes: who owns one, until when, and which are stale.

Every owned namespace carries three annotations:

``ha-bench/owner``    ``user@host pid N`` of the harness that made it
``ha-bench/expires``  an RFC 3339 UTC time; the running harness pushes it forward every
                      few minutes (a lease), so it lapses soon after a harness is killed
``ha-bench/kept``     set when a namespace is left on purpose (``HA_BENCH_KEEP_NAMESPACE``
                      after a failure): kept for inspection until the next run

A namespace labelled as the harness's is *stale* when its lease expired, it was kept, it
has no owner annotation, or its owner is a process of this host that no longer runs. The
next owned run deletes stale ones (its own namespace included, before applying), and so
does ``ha-bench kind gc``; one that is not stale is in use and is never touched.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

OWNER = "ha-bench/owner"
EXPIRES = "ha-bench/expires"
KEPT = "ha-bench/kept"
LEASE_S = 30 * 60.0
RENEW_S = 5 * 60.0
KEEP_ENV = "HA_BENCH_KEEP_NAMESPACE"
KEEP_CHOICES = {"": "never", "0": "never", "1": "on-failure", "on-failure": "on-failure",
                "always": "always"}  # fmt: skip


def owner_id() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lease(now: dt.datetime, lease_s: float = LEASE_S, *, kept: str | None = None) -> dict[str, str]:
    """The annotations of a namespace owned by this process until ``now + lease_s``."""
    out = {OWNER: owner_id(), EXPIRES: _iso(now + dt.timedelta(seconds=lease_s))}
    if kept:
        out[KEPT] = kept
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(owner: str) -> bool | None:
    """Does the owning process still run? None if it is not of this host (cannot tell)."""
    who, _, pid = owner.rpartition(" pid ")
    host = who.rpartition("@")[2]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return _pid_alive(int(pid))


def staleness(
    namespace: Mapping[str, Any],
    now: dt.datetime,
    *,
    alive: Callable[[str], bool | None] = owner_alive,
) -> str | None:
    """Why ``namespace`` is stale, or None if it is in use (or being deleted already)."""
    meta = namespace.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    notes = meta.get("annotations") or {}
    owner, expires = notes.get(OWNER), notes.get(EXPIRES)
    if notes.get(KEPT):
        return f"kept after a failure ({notes[KEPT]})"
    if not owner or not expires:
        return "no owner or expiry annotation"
    try:
        until = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return f"unreadable expiry {expires!r}"
    if until <= now:
        return f"lease of {owner} expired at {expires}"
    if owner != owner_id() and alive(owner) is False:
        return f"its owner ({owner}) no longer runs"
    return None


def in_use_by(namespace: Mapping[str, Any]) -> str:
    notes = (namespace.get("metadata") or {}).get("annotations") or {}
    return f"{notes.get(OWNER, '?')} until {notes.get(EXPIRES, '?')}"


def gc(
    api: Any,
    now: dt.datetime,
    *,
    skip: tuple[str, ...] = (),
    say: Callable[[str], None] = lambda line: None,
) -> list[tuple[str, str]]:
    """Delete every stale namespace labelled as the harness's (not those in ``skip``);
    returns ``[(name, why)]``. ``api``: a :class:`~.safety.GuardedApi` in owned mode."""
    removed = []
    for namespace in api.namespaces():
        name = namespace["metadata"]["name"]
        if name in skip:
            continue
        why = staleness(namespace, now)
        if why is None:
            if not (namespace["metadata"].get("deletionTimestamp")):
                say(f"namespace {name} is in use by {in_use_by(namespace)}: left alone")
            continue
        api.delete_namespace(name)
        say(f"deleted stale namespace {name}: {why}")
        removed.append((name, why))
    return removed


def keep_policy(environ: Mapping[str, str] | None = None) -> str:
    """``never`` | ``on-failure`` | ``always`` from ``$HA_BENCH_KEEP_NAMESPACE``."""
    value = (os.environ if environ is None else environ).get(KEEP_ENV, "").strip().lower()
    return KEEP_CHOICES.get(value, "on-failure")


def gc_context(
    context: str,
    *,
    kubeconfig: str | None = None,
    api: Any = None,
    say: Callable[[str], None] = print,
) -> list[tuple[str, str]]:
    """``ha-bench kind gc``: delete the stale harness namespaces of ``context`` (which must
    be on the allow-list)."""
    from harness.platform.kubernetes.api import KubeApi
    from harness.platform.kubernetes.manifests import NAMESPACE, PART_OF
    from harness.platform.kubernetes.safety import GuardedApi, Scope

    raw = api or KubeApi(context, kubeconfig=kubeconfig)
    guarded = GuardedApi(raw, Scope(NAMESPACE, dict(PART_OF)), owned=True)
    return gc(guarded, dt.datetime.now(dt.UTC), say=say)
