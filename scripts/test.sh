#!/usr/bin/env bash
# The whole test suite: local services up (installed if missing), the
# container files linted, then cargo test.
#   scripts/test.sh                 everything
#   scripts/test.sh -p aisha-actors --test fakes     any cargo test arguments
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh start
if [ "$#" -eq 0 ]; then bash scripts/lint.sh; fi
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a
if [ "$#" -eq 0 ]; then set -- --workspace; fi
cargo test "$@"
