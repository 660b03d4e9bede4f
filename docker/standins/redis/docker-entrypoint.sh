#!/bin/sh
# The official image builds Redis with protected mode off, so other
# containers on the network can connect; Debian's keeps it on.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no --bind '* -::*' "$@"
fi
exec "$@"
