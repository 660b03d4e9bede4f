#!/usr/bin/env bash
# A throwaway certificate authority for TLS on this machine (tests and local
# stacks only): made once in .local/ca/, then leaf certificates signed by it.
#
#   scripts/certs.sh ca                         the CA's certificate path (made if missing)
#   scripts/certs.sh issue DIR NAME SANS        DIR/NAME.crt (leaf, then CA) and DIR/NAME.key
#                                               e.g. issue .local/tls localhost DNS:localhost,IP:127.0.0.1
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CA_DIR="$ROOT/.local/ca"

ca() {
  if [ ! -f "$CA_DIR/ca.crt" ]; then
    mkdir -p "$CA_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=aishad local test CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.crt" 2>/dev/null
    chmod 600 "$CA_DIR/ca.key"
  fi
  echo "$CA_DIR/ca.crt"
}

issue() {
  local dir="$1" name="$2" sans="$3"
  ca >/dev/null
  mkdir -p "$dir"
  local ext
  ext=$(mktemp)
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$sans" >"$ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" -CAcreateserial \
    -days 825 -extfile "$ext" -out "$dir/$name.leaf" 2>/dev/null
  cat "$dir/$name.leaf" "$CA_DIR/ca.crt" >"$dir/$name.crt"
  rm -f "$dir/$name.csr" "$dir/$name.leaf" "$ext"
  chmod 600 "$dir/$name.key"
}

case "${1:-}" in
  ca) ca ;;
  issue) [ "$#" -eq 4 ] || { echo "usage: $0 issue DIR NAME SANS" >&2; exit 64; }; issue "$2" "$3" "$4" ;;
  *) echo "usage: $0 {ca|issue DIR NAME SANS}" >&2; exit 64 ;;
esac
