#!/usr/bin/env bash
# Benchmarks against the real local services; prints one line per measurement.
#   scripts/bench.sh                 all of them
#   scripts/bench.sh -p aisha-actors --bench throughput
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh start
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a
if [ "$#" -eq 0 ]; then set -- --workspace; fi
cargo bench "$@"
