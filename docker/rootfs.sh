#!/bin/sh
# Copies programs into a root filesystem with the shared libraries each
# needs (as ldd resolves them here, the dynamic loader included), so the
# image that holds it needs no distribution, no package manager and no
# shell: what runs is only what was copied.
#   rootfs.sh ROOT PROGRAM...     each PROGRAM is an absolute path, kept at that path
set -eu

root="$1"
shift
for program in "$@"; do
  mkdir -p "$root$(dirname "$program")"
  cp -L "$program" "$root$program"
  ldd "$program" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    while read -r library; do
      [ -e "$root$library" ] && continue
      mkdir -p "$root$(dirname "$library")"
      cp -L "$library" "$root$library"
    done
done
