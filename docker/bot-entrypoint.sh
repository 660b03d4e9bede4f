#!/bin/sh
# Started as root (compose files do, so old root-owned volumes keep working):
# make the writable directories and give them to `aisha`, then drop to it.
# Started as aisha: just check. Never prints a setting, let alone a secret.
set -eu

dirs="/app/storage/temp /app/storage/audio /app/logs"

if [ "$(id -u)" = "0" ]; then
  for dir in $dirs; do
    mkdir -p "$dir"
    chown aisha:aisha "$dir"
  done
  exec setpriv --reuid=aisha --regid=aisha --init-groups -- "$@"
fi

for dir in $dirs; do
  if [ ! -w "$dir" ]; then
    echo "bot-entrypoint: $dir is not writable by $(id -un); start the container as root once to fix ownership" >&2
  fi
done
exec "$@"
