#!/usr/bin/env bash
# Security scanners over deploy/: checkov (kubernetes, kustomize and dockerfile frameworks, configured by
# deploy/checkov.yaml: every skipped check has its reason there) and hadolint on deploy/Dockerfile.
# Any finding exits non-zero. Run from anywhere; scripts/test.sh calls it.
#
# The scanners get their own venv (.tools/scan-venv): checkov 3.3.30 requires packaging<24 and pytest 9.2
# packaging>=24, so they cannot share the test venv.
# Offline: --skip-download (in the config) stops every download from the vendor's platform, and
# CKV_SKIP_PACKAGE_UPDATE_CHECK stops checkov's "newer version available" lookup. Observed with strace: the
# only connection left is kubectl's own attempt to reach a local API server (127.0.0.1:8080), refused at once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.tools/scan-venv"
req=tests/deploy/scanner-requirements.txt
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# pip takes seconds even when everything is installed: skip it while the pins are those last installed.
if ! cmp -s "$req" "$venv/installed-requirements.txt"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/installed-requirements.txt"
fi

echo "==> checkov (deploy/checkov.yaml)"
CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$venv/bin/checkov" --config-file deploy/checkov.yaml
echo "==> hadolint deploy/Dockerfile"
"$venv/bin/hadolint" deploy/Dockerfile
echo "scanners: no findings"
