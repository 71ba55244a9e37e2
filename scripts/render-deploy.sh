#!/usr/bin/env bash
# Renders the kustomize base deploy/base into the all-in-one manifest deploy/deployment.yaml.
#   scripts/render-deploy.sh           rewrite deploy/deployment.yaml
#   scripts/render-deploy.sh --check   exit 1 (with a diff) if deploy/deployment.yaml is out of date
# Uses `kubectl kustomize` (kustomize built into kubectl), or a standalone `kustomize build`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/deploy/deployment.yaml"
header='# GENERATED FILE, do not edit: the output of `kubectl kustomize deploy/base` (edit deploy/base instead).
# Regenerate with scripts/render-deploy.sh (scripts/render-deploy.sh --check only compares).'

render() {
  if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$root/deploy/base"
  elif command -v kustomize >/dev/null 2>&1; then
    kustomize build "$root/deploy/base"
  else
    echo "render-deploy.sh: neither kubectl nor kustomize is installed" >&2
    exit 2
  fi
}

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
{ printf '%s\n' "$header"; render; } >"$tmp"

case "${1:-}" in
  --check)
    if ! diff -u "$out" "$tmp"; then
      echo "render-deploy.sh: deploy/deployment.yaml is out of date; run scripts/render-deploy.sh" >&2
      exit 1
    fi
    echo "deploy/deployment.yaml is up to date"
    ;;
  "")
    cp "$tmp" "$out"
    echo "wrote $out"
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
