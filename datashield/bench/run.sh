#!/usr/bin/env bash
# DataSHIELD's part of `make bench`: a 1,000,000-row table served by a release trellis-datashield,
# timed through the published Python client, side by side with base R doing the same on the same
# data in the same run. Prints a report; asserts nothing. Usage: run.sh [ROWS] [REPEAT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rows=${1:-1000000}
repeat_n=${2:-5}
target=${CARGO_TARGET_DIR:-$repo/target}
work=$repo/target/datashield-bench
cargo build --release --locked -p trellis-datashield
python=$("$repo/datashield/tests/clients/setup.sh")
mkdir -p "$work"
if [ ! -f "$work/data-$rows/bench/cohort.csv" ]; then
  rm -rf "$work/data-$rows"
  python3 "$here/generate.py" "$work/data-$rows" "$rows"
fi
token=bench-$RANDOM$RANDOM
printf 'users:\n- {name: bench, token_sha256: %s}\n' "$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)" >"$work/tokens.yaml"
port=$((20000 + RANDOM % 20000))
start_ms=$(date +%s%3N)
"$target/release/trellis-datashield" serve --data "$work/data-$rows" --tokens "$work/tokens.yaml" \
  --listen "127.0.0.1:$port" --seed 1 >"$work/server.log" 2>&1 </dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
ready_ms=$(( $(date +%s%3N) - start_ms ))
ours=$(MPLBACKEND=Agg "$python" "$here/client.py" "http://127.0.0.1:$port" "$token" "$server" "$repeat_n")
theirs=$(Rscript --vanilla "$here/base-r.R" "$work/data-$rows/bench/cohort.csv" "$repeat_n")
kill $server; wait $server 2>/dev/null || true
trap - EXIT
python3 - "$ours" "$theirs" "$rows" "$ready_ms" "$(stat -c %s "$work/data-$rows/bench/cohort.csv")" <<'PY'
import json, sys
ours, theirs, rows, ready_ms, csv_bytes = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mib = lambda kib: kib / 1024
fmt = lambda t: f"{t[0] * 1000:.1f} ms ({t[1] * 1000:.1f}–{t[2] * 1000:.1f})"
print(f"\nDataSHIELD: {rows:,}-row table ({csv_bytes / 2**20:.0f} MiB CSV); median (min–max) of the repeats; base R in the same run")
print(f"  server start with the table loaded: {ready_ms / 1000:.2f} s")
print(f"  session start → first result (create, assign the table, meanDS; HTTP as the client sends it): {ours['session_to_first_result'] * 1000:.0f} ms   target < 50 ms")
print(f"  {'measure':<16}{'trellis-datashield':>26}{'base R':>26}{'ratio':>8}   target")
for name in ["meanDS", "table2DDS", "quantileMeanDS", "glm_gaussian", "glm_binomial"]:
    o, r = ours[name], theirs[name]
    print(f"  {name:<16}{fmt(o):>26}{fmt(r):>26}{o[0] / max(r[0], 1e-9):>7.2f}×   ≤ 1× base R")
for family in ["gaussian", "binomial"]:
    print(f"  glm_{family}: {ours[f'glm_{family}_calls']} calls; the whole fit through the Python client {fmt(ours[f'glm_{family}_client'])} (it sleeps 100 ms after each call)")
table = theirs["table_bytes"] / 2**20
session = mib(ours["rss_session_kib"] - ours["rss_before_kib"])
print(f"  memory per session (server RSS after assigning the table − before): {session:.0f} MiB; the table in R (object.size) {table:.0f} MiB; ratio {session / table:.2f}   target < 1.5")
print(f"  server RSS: {mib(ours['rss_before_kib']):.0f} MiB before the session, {mib(ours['rss_after_kib']):.0f} MiB after the calls")
PY
