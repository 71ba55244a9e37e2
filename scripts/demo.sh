#!/usr/bin/env bash
# The main job on an embedded default: build, install Sling if missing, create a small SQLite "mission" database,
# run `--batch` over the demo pipelines in pipelines/ into a SQLite "command" database, add rows, run again, and
# print what landed. Everything it writes stays under .demo/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command -v sqlite3 >/dev/null || { echo "demo: sqlite3 is needed (e.g. apt-get install sqlite3)" >&2; exit 1; }
echo "==> building sling-sync-wrapper"
cargo build --quiet --locked
echo "==> installing the pinned Sling CLI"
sling_bin="$(scripts/install-sling.sh)"

demo="$root/.demo"
rm -rf "$demo"
mkdir -p "$demo/home"
sqlite3 "$demo/mission.db" < scripts/demo-mission.sql

export MISSION_CLUSTER_ID="${MISSION_CLUSTER_ID:-demo-mission}"
export DEMO_MISSION="sqlite://$demo/mission.db"
export DEMO_COMMAND="sqlite://$demo/command.db"
export HOME="$demo/home"                       # Sling writes ~/.sling; keep it inside .demo
export OTEL_SDK_DISABLED="${OTEL_SDK_DISABLED:-true}"   # no collector in the demo; unset to export
run() {
  ./target/debug/sling-sync-wrapper --batch --log-format text \
    --pipeline-dir pipelines --state-path "$demo/state" --sling-bin "$sling_bin" "$@"
}

echo "==> first run: everything is new"
run
echo "==> two new orders arrive on the mission side"
sqlite3 "$demo/mission.db" "insert into orders values (4, 2, 7.25, '2026-01-04 09:00:00'), (5, 1, 3.10, '2026-01-04 10:00:00');"
echo "==> second run: only the new rows are copied"
run

echo "==> command database now holds:"
for t in orders customers products; do
  printf '  %-10s %s rows\n' "$t" "$(sqlite3 "$demo/command.db" "select count(*) from $t")"
done
echo "==> history journal: $demo/state/history.jsonl ($(wc -l < "$demo/state/history.jsonl") runs recorded)"
