#!/usr/bin/env bash
# The deployment, run for real: podman with Compose v2 (scripts/containers.sh),
# local base and stand-in images and aishad from docker/Dockerfile
# (scripts/images.sh), then tests/stack against the three compose files.
# Prints the figures (image size, start to healthy, RSS) and its own time.
#
#   scripts/stack-test.sh          every stack test
#   scripts/stack-test.sh NAME     the stack tests whose name contains NAME
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

bash scripts/services.sh start
bash scripts/containers.sh start
bash scripts/containers.sh registry
bash scripts/images.sh all
set -a
# shellcheck disable=SC1091
. .local/services.env
# shellcheck disable=SC1091
. .local/containers/env
# shellcheck disable=SC1090
. <(bash scripts/images.sh names)
set +a

log=.local/stack-test.log
cargo test --features stack-tests --test stack -- --test-threads=1 --nocapture "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
podman rm -f aisha-stack-bridge >/dev/null 2>&1 || true
echo
echo "stack test figures:"
grep -h '^stack figure:' "$log" | sed 's/^stack figure: /  /' || true
echo "  stack test time: $(( $(date +%s) - started )) s"
exit "$status"
