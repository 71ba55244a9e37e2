#!/usr/bin/env bash
# The project's test command: installs what the tests need (pinned Sling, Python test tools), then runs format and
# lint checks, the Rust tests (unit, real-Sling integration, databases, telemetry, console) and the deploy checks
# (security scanners, then the pytest suite).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need_apt=()
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
command -v tmux >/dev/null || need_apt+=(tmux)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "test.sh: please install: ${need_apt[*]}" >&2
    exit 1
  fi
fi

echo "==> Sling $(scripts/install-sling.sh)"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "==> cargo test"
cargo test --locked --no-fail-fast

if [ -d tests/deploy ]; then
  echo "==> deploy and dashboard checks"
  venv="$root/.tools/venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt
  # checkov + hadolint over deploy/ (own venv; any new finding fails here). Before pytest: its scanner
  # self-checks use the same installation.
  bash scripts/scan-deploy.sh
  "$venv/bin/python" -m pytest -q tests/deploy
fi
