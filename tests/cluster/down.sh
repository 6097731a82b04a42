#!/usr/bin/env bash
# Stops exactly the processes that up.sh started (checked by pid and binary) and removes the
# cluster's state. --keep-logs leaves the logs for a post-mortem.
set -euo pipefail
source "$(dirname "$0")/env.sh"
keep_logs=false
[ "${1:-}" = "--keep-logs" ] && keep_logs=true

node_status=0
# The real node goes first, while the API server can still delete its pods.
if real_node_mode || [ -d "$node_state/baseline" ]; then
  "$here/node-down.sh" || node_status=$?
fi
stopped=0
for (( i=${#components[@]}-1; i>=0; i-- )); do
  component=${components[$i]}
  pid=$(running_pid "$component") || continue
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then
    echo "cluster-down: $component (pid $pid) ignored SIGTERM for 10s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  stopped=$((stopped + 1))
done
rm -rf "$pki" "$pids" "$state/etcd" "$state"/*.kubeconfig "$kubeconfig"
$keep_logs || rm -rf "$logs"
echo "cluster-down: stopped $stopped processes and removed the cluster state in $state"
exit $node_status
