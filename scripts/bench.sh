#!/usr/bin/env bash
# Benchmarks against the real local services, on a PostgreSQL with fsync and
# synchronous_commit on (production's durability; the test suite's cluster
# has fsync off and is not used here). Each benchmark prints pgbench's
# one-commit ceiling for its statements on the same server in the same run.
#   scripts/bench.sh                 all of them
#   scripts/bench.sh -p aisha-actors --bench throughput
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh start-durable
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
set -a
# shellcheck disable=SC1091
. .local/services-durable.env
set +a
echo "bench: PostgreSQL at ${DATABASE_URL##*@}: fsync=$(psql "$DATABASE_URL" -XtAc "SHOW fsync") synchronous_commit=$(psql "$DATABASE_URL" -XtAc "SHOW synchronous_commit")"
if [ "$#" -eq 0 ]; then set -- --workspace; fi
cargo bench "$@"
