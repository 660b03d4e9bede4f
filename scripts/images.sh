#!/usr/bin/env bash
# Container images made on this machine, where no registry answers:
#   - localhost/debian:bookworm-slim       debootstrap --variant=minbase from the apt mirror
#   - localhost/aisha-rust-builder:<ver>-<hash>
#                                          that base + gcc + this machine's Rust toolchain
#   - localhost/aisha-{postgres,redis,s3,nginx,prometheus}:local-<hash>
#                                          stand-ins for the dev and webhook stacks' services
#   - aishad:<version> (and aishad:dev)   docker/Dockerfile, built on those bases
#   - aishad-links:<version>              aishad with yt-dlp, for the workers that read links
#                                          (docker/links; the wheel pinned in scripts/services.sh)
# The store is the machine's (scripts/containers.sh), so a tag names what an
# image was made from: <hash> is that of its Containerfile folder, and a
# changed folder makes a new image instead of reusing a stale one.
#
#   scripts/images.sh              everything (bases and stand-ins only when missing)
#   scripts/images.sh bases        the base and the builder
#   scripts/images.sh standins     the service stand-ins
#   scripts/images.sh aishad       the aishad image (prints its build time and size)
#   scripts/images.sh names        the variables that choose these images in the compose files
#
# With Docker and a registry none of this is needed: docker/Dockerfile's
# defaults are the official images.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/.local/images"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
RUST_VERSION=$(rustc --version | awk '{print $2}')

BASE_IMAGE=localhost/debian:bookworm-slim

# The first 12 hex digits of the sha256 of a folder's files (names and bytes).
folder_hash() {
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12
}

BUILDER_IMAGE="localhost/aisha-rust-builder:$RUST_VERSION-$(folder_hash "$ROOT/docker/standins/builder")"
standin_image() { echo "localhost/aisha-$1:local-$(folder_hash "$ROOT/docker/standins/$1")"; }

log() { printf 'images: %s\n' "$*" >&2; }

bash "$ROOT/scripts/containers.sh" start
set -a
# shellcheck disable=SC1091
. "$ROOT/.local/containers/env"
set +a

have() { podman image exists "$1"; }

build() {
  # --format docker keeps HEALTHCHECK (the OCI format has no place for it).
  podman build --format docker --build-arg "BASE=$BASE_IMAGE" "$@"
}

base() {
  have "$BASE_IMAGE" && return
  local rootfs="$WORK/rootfs"
  local mirror
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "debootstrap bookworm from $mirror"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { log "debootstrap failed: see $WORK/debootstrap.log"; return 1; }
  # What the official slim images leave out: apt lists, docs, man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

builder() {
  have "$BUILDER_IMAGE" && return
  local context="$WORK/builder" sysroot
  sysroot=$(rustc --print sysroot)
  log "builder with Rust $RUST_VERSION from $sysroot"
  rm -rf "$context" && mkdir -p "$context/toolchain"
  # Binaries and libraries only: docs are most of a toolchain's size.
  cp -a "$sysroot/bin" "$sysroot/lib" "$context/toolchain/"
  [ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$context/toolchain/"
  cp "$ROOT/docker/standins/builder/Containerfile" "$context/"
  cp /etc/ssl/certs/ca-certificates.crt "$context/"
  build -t "$BUILDER_IMAGE" "$context"
  rm -rf "$context"
}

standin() {
  local name="$1" image context="$WORK/$1"
  image=$(standin_image "$name")
  have "$image" && return
  log "stand-in $image"
  rm -rf "$context" && mkdir -p "$context"
  cp -a "$ROOT/docker/standins/$name/." "$context/"
  if [ "$name" = s3 ]; then
    local weed
    weed="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed"
    [ -x "$weed" ] || weed=$(command -v weed)
    cp "$weed" "$context/weed"
  fi
  build -t "$image" "$context"
  rm -rf "$context"
}

standins() {
  for name in postgres redis s3 nginx prometheus; do standin "$name"; done
}

aishad() {
  local started size
  started=$(date +%s)
  build --build-arg "BUILDER_IMAGE=$BUILDER_IMAGE" --build-arg "RUNTIME_IMAGE=$BASE_IMAGE" \
    -t "aishad:$VERSION" -t aishad:dev -f "$ROOT/docker/Dockerfile" "$ROOT"
  size=$(podman image inspect "aishad:$VERSION" --format '{{.Size}}')
  log "aishad:$VERSION built in $(( $(date +%s) - started )) s; image size $(( size / 1000000 )) MB"
}

links() {
  local context="$WORK/links" version size base_size
  version=$(sed -n 's/^YTDLP_VERSION=//p' "$ROOT/scripts/services.sh")
  rm -rf "$context" && mkdir -p "$context"
  cp "$ROOT/docker/links/Containerfile" "$ROOT/docker/links/yt-dlp" "$ROOT/docker/rootfs.sh" "$context/"
  python3 -m pip download -q --disable-pip-version-check --no-deps -d "$context" "yt-dlp==$version"
  mv "$context"/yt_dlp-*.whl "$context/yt_dlp.whl"
  build --build-arg "AISHAD_IMAGE=localhost/aishad:$VERSION" --build-arg "RUNTIME_IMAGE=$BASE_IMAGE" \
    -t "aishad-links:$VERSION" "$context"
  rm -rf "$context"
  size=$(podman image inspect "aishad-links:$VERSION" --format '{{.Size}}')
  base_size=$(podman image inspect "aishad:$VERSION" --format '{{.Size}}')
  log "aishad-links:$VERSION (yt-dlp $version): image size $(( size / 1000000 )) MB, $(( (size - base_size) / 1000000 )) MB over aishad"
}

names() {
  cat <<EOF
POSTGRES_IMAGE=$(standin_image postgres)
REDIS_IMAGE=$(standin_image redis)
MINIO_IMAGE=$(standin_image s3)
NGINX_IMAGE=$(standin_image nginx)
PROMETHEUS_IMAGE=$(standin_image prometheus)
AISHAD_BUILDER_IMAGE=$BUILDER_IMAGE
AISHAD_RUNTIME_IMAGE=$BASE_IMAGE
EOF
}

mkdir -p "$WORK"
case "${1:-all}" in
  bases) base; builder ;;
  standins) base; standins ;;
  aishad) base; builder; aishad; links ;;
  names) names ;;
  all) base; builder; standins; aishad; links ;;
  *) echo "usage: $0 [all|bases|standins|aishad|names]" >&2; exit 64 ;;
esac
