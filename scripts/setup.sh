#!/usr/bin/env bash
# Set up everything airflow-ha-bench needs on a Debian/Ubuntu machine with Python >= 3.11:
# PostgreSQL, Redis and HAProxy (OS packages), the harness in .venv, and the default
# Airflow version in its own cached environment. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
AIRFLOW_VERSION="${AIRFLOW_VERSION:-}"  # empty: the harness default

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: error: Python >= 3.11 is required (found: $("$PYTHON" --version 2>&1)) — fix: install python3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

need_os=()
command -v haproxy >/dev/null || need_os+=(haproxy)
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need_os+=(faketime)  # clock_skew faults
command -v redis-server >/dev/null || need_os+=(redis-server)
command -v chromium >/dev/null || need_os+=(chromium)  # renders report.html in the tests
# the pod network (harness/platform/local/net): nft filters, iptables NFQUEUE for latency,
# and what builds NetfilterQueue from source (a C compiler, the library's headers)
command -v nft >/dev/null || need_os+=(nftables)
command -v iptables >/dev/null || need_os+=(iptables)
[ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || need_os+=(libnetfilter-queue-dev)
command -v cc >/dev/null || need_os+=(gcc)
"$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need_os+=("python3-dev")  # NetfilterQueue's C extension needs Python.h
if ! command -v postgres >/dev/null && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  need_os+=(postgresql)
fi
if ((${#need_os[@]})); then
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing OS packages: ${need_os[*]} (apt-get)"
    $SUDO apt-get update -qq
    # policy-rc.d: do not start the packages' own system services; the harness runs its own
    $SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_os[@]}" >/dev/null
    $SUDO rm -f /usr/sbin/policy-rc.d
  else
    echo "setup: error: missing ${need_os[*]} and no apt-get — fix: install the packages ${need_os[*]} with your OS package manager" >&2
    exit 2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing the harness into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# PYTHONWARNINGS: setuptools' notices about editable installs are not for our users
PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet -e ".[dev]" 2>&1 \
  | grep -v "is ignored: it is neither" || true
.venv/bin/python -c "import harness, locust, pandas" # fails loudly if the install did not work

echo "setup: Airflow under test (its own cached environment)"
.venv/bin/python -m harness.platform.airflow_env $AIRFLOW_VERSION
echo "setup: ready — experiments: .venv/bin/python -m pytest experiments/; tests: .venv/bin/python -m pytest"
