#!/usr/bin/env bash
# The Kubernetes manifests (deploy/kubernetes/) checked offline, as no
# cluster runs here: each overlay renders with `kubectl kustomize`, and
# every object in it validates, strictly (no unknown field), against the
# schemas of each Kubernetes version in VERSIONS (kubernetes-validate from
# PyPI carries them), and so does each optional component on its own. The
# custom resources (KEDA, ServiceMonitor, PrometheusRule, ExternalSecret)
# have no schema there: tests/kubernetes.rs checks how they
# refer to the rest, and holds every pod template to the security policy.
#
#   scripts/kubernetes.sh check
#   scripts/kubernetes.sh render OVERLAY     print what an overlay applies
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# matchLabelKeys in topology spreads needs 1.27; 1.37 is the newest schema carried.
VERSIONS="1.30.0 1.32.0 1.34.0 1.37.0"
VALIDATOR="kubernetes-validate==1.37.0"

install() {
  command -v kubectl >/dev/null || {
    echo "kubernetes: kubectl (1.27 or later, with kustomize 5) is needed; install it from https://kubernetes.io/docs/tasks/tools/" >&2
    exit 1
  }
  command -v kubernetes-validate >/dev/null || python3 -m pip install -q --disable-pip-version-check "$VALIDATOR"
}

check() {
  install
  local scratch overlay version
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  for overlay in deploy/kubernetes/overlays/*/; do
    overlay=$(basename "$overlay")
    kubectl kustomize "deploy/kubernetes/overlays/$overlay" >"$scratch/$overlay.yaml"
    for version in $VERSIONS; do
      # Warnings name only the custom resources, which these schemas do not carry.
      kubernetes-validate --strict --quiet --no-warn -k "$version" "$scratch/$overlay.yaml"
    done
    echo "kubernetes: $overlay renders $(grep -c '^kind:' "$scratch/$overlay.yaml") objects, valid against $VERSIONS"
  done
  # Each optional component alone on the base, as an operator adds one at a time.
  # (kustomize takes no absolute paths: a copy of the tree, with a folder per trial beside the overlays).
  local component
  cp -r deploy/kubernetes "$scratch/tree"
  for component in deploy/kubernetes/components/*/; do
    component=$(basename "$component")
    mkdir -p "$scratch/tree/overlays/with-$component"
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\ncomponents: [../../components/%s]\n' \
      "$component" >"$scratch/tree/overlays/with-$component/kustomization.yaml"
    kubectl kustomize "$scratch/tree/overlays/with-$component" >"$scratch/$component.yaml"
    kubernetes-validate --strict --quiet --no-warn -k "${VERSIONS##* }" "$scratch/$component.yaml"
    echo "kubernetes: the base with component $component alone renders $(grep -c '^kind:' "$scratch/$component.yaml") objects"
  done
}

case "${1:-}" in
  check) check ;;
  render) kubectl kustomize "deploy/kubernetes/overlays/${2:?overlay}" ;;
  *) echo "usage: $0 check | render OVERLAY" >&2; exit 64 ;;
esac
