#!/usr/bin/env bash
# Console benchmark (release build): frame render time, RSS after 100k Sling lines, idle CPU.
#
#   scripts/bench-console.sh            prints the figures for docs/PERFORMANCE.md
#
# 1. Frame render: examples/console_frame.rs draws 200 pipelines with 100k buffered lines (target <= 5 ms).
# 2. RSS: the release console in a private tmux server (80x24, NO_COLOR) runs 200 pipelines whose Sling is
#    tests/fixtures/sling-shim.sh printing 500 INFO lines each (100k lines through the console, all kept: 500
#    per pipeline is under the per-pipeline cap); VmRSS and VmHWM are read from /proc afterwards (target <= 40 MB).
# 3. Idle CPU: utime+stime of the console over IDLE_SECONDS with nothing running (target < 1 %).
# Needs tmux. Cleans up its tmux server, console and temporary directory whatever happens.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IDLE_SECONDS="${IDLE_SECONDS:-30}"
PIPELINES=200
LINES_EACH=500

cd "$ROOT"
cargo build --release --quiet --bin sling-sync-wrapper --example console_frame
BIN="$ROOT/target/release/sling-sync-wrapper"

echo "## frame render (release)"
"$ROOT/target/release/examples/console_frame"

command -v tmux >/dev/null || { echo "tmux is not installed: skipping the RSS and idle CPU measures"; exit 0; }
TMP="$(mktemp -d)"
SOCKET="bench-console-$$"
cleanup() {
  tmux -L "$SOCKET" kill-server 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$TMP/pipelines" "$TMP/shim" "$TMP/home"
for i in $(seq -w 1 "$PIPELINES"); do
  printf 'source: MISSION\ntarget: COMMAND\nstreams:\n  main.orders:\n    mode: full-refresh\n    object: main.orders\n' \
    > "$TMP/pipelines/mission01-pipeline-$i.yaml"
done
cat > "$TMP/console.sh" <<EOF
export NO_COLOR=1 MISSION_CLUSTER_ID=bench OTEL_SDK_DISABLED=true HOME='$TMP/home' \
  MISSION='sqlite://$TMP/m.db' COMMAND='sqlite://$TMP/c.db' \
  SHIM_DIR='$TMP/shim' SHIM_MODE=noisy SHIM_LEVEL=info SHIM_LINES=$LINES_EACH
exec '$BIN' --pipeline-dir '$TMP/pipelines' --state-path '$TMP/state' --sling-bin '$ROOT/tests/fixtures/sling-shim.sh' 2>'$TMP/stderr.txt'
EOF
tmux -L "$SOCKET" new-session -d -s bench -x 80 -y 24 "sh '$TMP/console.sh'"

screen() { tmux -L "$SOCKET" capture-pane -p -t bench; }
wait_for() { # $1 = grep pattern, $2 = seconds
  local end=$((SECONDS + $2))
  until screen | grep -q -- "$1"; do
    [ "$SECONDS" -lt "$end" ] || { echo "timed out waiting for: $1"; screen; exit 1; }
    sleep 0.2
  done
}
pid_of_console() {
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -- "--state-path $TMP/state"; then basename "$p"; return; fi
  done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

wait_for "Pipelines $PIPELINES/$PIPELINES" 30
PID="$(pid_of_console)"
[ -n "$PID" ] || { echo "console process not found"; exit 1; }
echo
echo "## console process $PID (release, 80x24, $PIPELINES pipelines)"
echo "RSS at start: $(kib "$PID" VmRSS) KiB"

TICKS="$(getconf CLK_TCK)"
idle() { # prints CPU % over IDLE_SECONDS
  local a b
  a="$(cpu_ticks "$PID")"; sleep "$IDLE_SECONDS"; b="$(cpu_ticks "$PID")"
  awk -v d="$((b - a))" -v t="$TICKS" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f %% (%d ticks in %d s)\n", 100 * d / t / s, d, s }'
}
echo "idle CPU before any run: $(idle)"

tmux -L "$SOCKET" send-keys -t bench a
wait_for "Run $PIPELINES pipelines?" 10
start=$SECONDS
tmux -L "$SOCKET" send-keys -t bench y
end=$((SECONDS + 600))
until [ "$({ wc -l < "$TMP/state/history.jsonl"; } 2>/dev/null || echo 0)" -ge "$PIPELINES" ]; do
  [ "$SECONDS" -lt "$end" ] || { echo "timed out waiting for $PIPELINES runs"; screen; exit 1; }
  sleep 0.5
done
sleep 1 # the last events reach the console
echo "$PIPELINES runs x $LINES_EACH lines = $((PIPELINES * LINES_EACH)) Sling lines in $((SECONDS - start)) s"
echo "RSS after them: $(kib "$PID" VmRSS) KiB, peak (VmHWM) $(kib "$PID" VmHWM) KiB"
echo "idle CPU after the runs: $(idle)"
tmux -L "$SOCKET" send-keys -t bench q
sleep 1
