#!/usr/bin/env bash
# Installs the pinned Sling CLI from its PyPI wheel into a project-local folder and prints the binary's path.
# The binary ships inside the wheel, so nothing is fetched from anywhere but the Python package index.
# Idempotent: a binary that already reports the pinned version is kept.
set -euo pipefail

SLING_VERSION="1.4.11"
WHEEL="sling-linux-amd64==${SLING_VERSION}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${SLING_INSTALL_DIR:-$root/.tools/sling-$SLING_VERSION}"
bin="$dest/sling"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "Version: $SLING_VERSION"; then
  echo "$bin"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-sling.sh: the pinned wheel ($WHEEL) is for Linux x86_64 only; found $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac

python="$(command -v python3 || command -v python || true)"
[ -n "$python" ] || { echo "install-sling.sh: python3 with pip is needed to fetch $WHEEL" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$WHEEL" >&2
whl="$(ls "$tmp"/*.whl)"
mkdir -p "$dest"
# Extract only the binary; write it under a temporary name and rename, so a half-written file is never left as `sling`.
"$python" - "$whl" "$bin.partial" <<'PY'
import sys, zipfile, shutil
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("/bin/sling-linux-amd64"))
    with z.open(name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
chmod 0755 "$bin.partial"
mv -f "$bin.partial" "$bin"
"$bin" --version 2>&1 | grep -q "Version: $SLING_VERSION" || { echo "install-sling.sh: $bin does not report version $SLING_VERSION" >&2; exit 1; }
echo "$bin"
