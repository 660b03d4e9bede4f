#!/usr/bin/env bash
# A Docker swarm of three nodes on this one machine, for tests/stack/swarm.rs:
# each node a dockerd (Debian's docker.io) in a network namespace of its own,
# on a bridge of ours (aisha-swarm, 10.231.0.1/24; nodes .11, .12, .13), all
# three managers. The recipe and its limits are in docs/design.md, "Past
# one host": no IPVS in this kernel, so no routing mesh and no service VIPs
# (the stack uses endpoint_mode dnsrr and host-mode ports). No registry
# outside: each node loads the images from podman's store, or pulls from
# Debian's docker-registry on the bridge (10.231.0.1:5000, plain HTTP), as a
# node new to an image does.
#
#   scripts/swarm.sh up IMAGE...     install, start the nodes, form the swarm, load the images
#   scripts/swarm.sh load IMAGE...   load more images into every node
#   scripts/swarm.sh push IMAGE NAME push an image to the swarm's registry (nodes pull 10.231.0.1:5000/NAME)
#   scripts/swarm.sh kill N          SIGKILL node N (its dockerd, containerd and containers)
#   scripts/swarm.sh start N         start node N again (it rejoins with its state)
#   scripts/swarm.sh down            stop every node and remove what up made
#   scripts/swarm.sh socket N        the Docker socket of node N (DOCKER_HOST=unix://…)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.local/swarm"
BRIDGE=aisha-swarm
REGISTRY=10.231.0.1:5000
NODES="1 2 3"
log() { printf 'swarm: %s\n' "$*" >&2; }

node_ip() { echo "10.231.0.1$1"; }
socket() { echo "$DIR/node$1/docker.sock"; }
on() { local n=$1; shift; DOCKER_HOST="unix://$(socket "$n")" docker "$@"; }

install() {
  if ! command -v dockerd >/dev/null || ! command -v tini >/dev/null || ! command -v docker-registry >/dev/null; then
    log "apt-get install docker.io tini docker-registry (dockerd is started here by hand, never as a system service)"
    # Keep the package's scripts from starting a system dockerd.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    apt-get -o Acquire::Retries=3 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io tini iptables docker-registry >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
  modprobe vxlan 2>/dev/null || true
}

network() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || {
    ip link add "$BRIDGE" type bridge
    ip addr add 10.231.0.1/24 dev "$BRIDGE"
    ip link set "$BRIDGE" up
  }
  local n ns
  for n in $NODES; do
    ns="aisha-node$n"
    ip netns list | grep -qw "$ns" && continue
    ip netns add "$ns"
    ip link add "swn$n" type veth peer name "swn$n-in"
    ip link set "swn$n" master "$BRIDGE" up
    ip link set "swn$n-in" netns "$ns"
    ip -n "$ns" link set "swn$n-in" name eth0
    ip -n "$ns" addr add "$(node_ip "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via 10.231.0.1
  done
}

# Runs inside the node's own mount, UTS and PID namespaces: what dockerd
# needs mounted, then dockerd under tini as PID 1, so SIGKILL of the node
# process kills the whole node.
node_init() {
  local n=$1 dir="$DIR/node$1" c
  hostname "aisha-node$n"
  mount -t sysfs sysfs /sys
  mount -t tmpfs cgroup /sys/fs/cgroup
  for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
    mkdir -p "/sys/fs/cgroup/$c"
    mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
  done
  mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
  mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
  mount -t cgroup2 none /sys/fs/cgroup/unified
  mount --bind "$dir/resolv.conf" /etc/resolv.conf
  mount --bind "$dir/etc" /etc/docker
  mount --bind "$dir/network-files" /var/lib/docker/network/files
  mount --bind "$dir/plugins" /run/docker/plugins
  mount -t tmpfs containerd /run/containerd
  exec tini -s -- dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$dir/docker.sock" \
    --pidfile "$dir/docker.pid" --cgroup-parent "aisha-node$n" --storage-driver overlay2 \
    --containerd-namespace "aisha-node$n" --containerd-plugins-namespace "aisha-node$n-plugins" \
    >"$dir/dockerd.log" 2>&1
}

start_node() {
  local n=$1 dir="$DIR/node$1"
  mkdir -p "$dir/data" "$dir/exec" "$dir/etc" "$dir/network-files" "$dir/plugins" /var/lib/docker/network/files /run/docker/plugins /run/containerd
  echo "nameserver 127.0.0.11" >"$dir/resolv.conf"
  echo '{"log-driver": "json-file", "log-opts": {"max-size": "10m"}, "insecure-registries": ["'"$REGISTRY"'"]}' \
    >"$dir/etc/daemon.json"
  rm -rf "$dir/exec" "$dir/docker.pid" "$dir/docker.sock"   # what a SIGKILL leaves behind
  mkdir -p "$dir/exec"
  nsenter --net="/run/netns/aisha-node$n" -- unshare --mount --uts --pid --fork --kill-child --mount-proc \
    --propagation private "$0" node-init "$n" </dev/null >"$dir/node.log" 2>&1 &
  echo $! >"$dir/node.pid"
  local waited=0
  until on "$n" info >/dev/null 2>&1; do
    sleep 0.5; waited=$((waited + 1))
    [ "$waited" -lt 120 ] || { log "node $n did not start:"; tail -20 "$dir/dockerd.log" >&2; exit 1; }
  done
}

form() {
  on 1 swarm init --advertise-addr "$(node_ip 1)" >/dev/null
  local token n
  token=$(on 1 swarm join-token -q manager)
  for n in 2 3; do
    on "$n" swarm join --token "$token" --advertise-addr "$(node_ip "$n")" "$(node_ip 1):2377" >/dev/null
  done
}

podman_env() {
  set -a
  # shellcheck disable=SC1091
  . "$ROOT/.local/containers/env"
  set +a
}

load() {
  local image n
  podman_env
  for image in "$@"; do
    podman save --format docker-archive "$image" >"$DIR/image.tar"
    for n in $NODES; do on "$n" load -q -i "$DIR/image.tar" >/dev/null; done
    rm -f "$DIR/image.tar"
  done
}

registry_up() { curl -sf "http://$REGISTRY/v2/" >/dev/null 2>&1; }

# Listens on the bridge only: the nodes and this host reach it, nothing else does.
registry() {
  registry_up && return
  mkdir -p "$DIR/registry"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$DIR/registry/data" "$REGISTRY" >"$DIR/registry/config.yml"
  nohup docker-registry serve "$DIR/registry/config.yml" >"$DIR/registry/registry.log" 2>&1 &
  echo $! >"$DIR/registry.pid"
  for _ in $(seq 1 100); do registry_up && return; sleep 0.1; done
  log "docker-registry did not start: see $DIR/registry/registry.log"; exit 1
}

push() {
  podman_env
  podman push -q --tls-verify=false --format v2s2 "$1" "$REGISTRY/$2" >/dev/null
}

up() {
  install
  down >/dev/null 2>&1 || true
  network
  registry
  local n started=$SECONDS
  for n in $NODES; do start_node "$n"; done
  form
  load "$@"
  log "3 nodes up, swarm formed, $# image(s) loaded in $((SECONDS - started)) s"
}

kill_node() {
  local pid
  pid=$(cat "$DIR/node$1/node.pid")
  # The unshare process's child is tini, PID 1 of the node: killing it ends every process in the node.
  pkill -KILL -P "$pid" || true
  kill -KILL "$pid" 2>/dev/null || true
}

down() {
  local n
  for n in $NODES; do
    [ -f "$DIR/node$n/node.pid" ] && kill_node "$n"
    ip netns del "aisha-node$n" 2>/dev/null || true
  done
  [ -f "$DIR/registry.pid" ] && { kill "$(cat "$DIR/registry.pid")" 2>/dev/null || true; }
  ip link del "$BRIDGE" 2>/dev/null || true
  sleep 1
  # Mounts made by dockerd in its private mount namespace die with it; the data may hold overlay files owned by root.
  rm -rf "$DIR"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  load) shift; load "$@" ;;
  push) push "$2" "$3" ;;
  node-init) node_init "$2" ;;
  kill) kill_node "$2" ;;
  start) start_node "$2" ;;
  down) down ;;
  socket) socket "$2" ;;
  *) echo "usage: $0 up IMAGE... | load IMAGE... | push IMAGE NAME | kill N | start N | down | socket N" >&2; exit 64 ;;
esac
