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
bash scripts/services.sh start
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
if [ -z "${AISHAD_SKIP_STACK:-}" ]; then
  bash scripts/stack-test.sh
fi
