#!/usr/bin/env bash
# The whole test suite: local services up (installed if missing), the
# container files linted, the alert rules and dashboard checked (promtool),
# the Kubernetes manifests rendered and validated (scripts/kubernetes.sh),
# the workspace's tests under cargo-nextest (and the
# doc tests), then the deployment run for real in containers
# (scripts/stack-test.sh).
#   scripts/test.sh                 everything
#   scripts/test.sh -p aisha-actors --test fakes     any cargo test arguments (no lint, no stack;
#                                                    cargo test itself, not nextest)
#   AISHAD_SKIP_STACK=1 scripts/test.sh              everything but the container stack
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# SeaweedFS turns its volumes read-only once its disk has under 1 % free, and
# a run then fails in thirty places at once, far from the cause. A fresh
# clone's run writes about 10 GiB (measured: the build 6.4, the test
# databases 2.8, objects and images under 1); one with a build writes 4.
check_disk_room() {
  local total_kib free_kib need_gib
  read -r total_kib free_kib < <(df -Pk . | awk 'NR == 2 { print $2, $4 }')
  need_gib=$(( total_kib / 100 / 1048576 + $([ -d target/debug ] && echo 4 || echo 10) ))
  if [ "$free_kib" -lt $(( need_gib * 1048576 )) ]; then
    echo "test: $(( free_kib / 1048576 )) GiB free on this disk; a run needs about $need_gib GiB (SeaweedFS stops writing under 1 % free). Free some space and run again." >&2
    exit 1
  fi
}

bash scripts/services.sh start
bash scripts/services.sh prune
check_disk_room
if [ "$#" -eq 0 ]; then bash scripts/lint.sh; bash scripts/monitoring.sh check; bash scripts/kubernetes.sh check; fi
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a
if [ "$#" -gt 0 ]; then
  exec cargo test "$@"
fi
# cargo-nextest runs each test as a process of its own and several at once
# across the binaries (.config/nextest.toml); cargo test would run the
# binaries one after another. Installed once per machine, as cargo-deny is.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test: installing cargo-nextest (once per machine, a few minutes)"
  cargo install --locked --quiet cargo-nextest
fi
cargo nextest run --workspace
cargo test --workspace --doc --quiet
bash scripts/services.sh prune
if [ -z "${AISHAD_SKIP_STACK:-}" ]; then
  bash scripts/stack-test.sh
fi
