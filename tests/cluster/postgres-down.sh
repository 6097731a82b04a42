#!/usr/bin/env bash
# Stops the test PostgreSQL that postgres-up.sh started (pg_ctl stop -m fast on its own data
# directory, so no other server is touched) and removes its data.
set -euo pipefail
source "$(dirname "$0")/env.sh"
say() { echo "postgres-down: $*" >&2; }

postgres_resolve_dir
stopped=0
# Both places postgres-up.sh may have used (which one depends on permissions that may have changed).
for dir in "$postgres_preferred_dir" "$postgres_fallback_dir"; do
  [ -d "$dir" ] || continue
  postgres_check_dir "$dir" || exit 1
  exec 8>"$dir.lock"
  flock -n 8 || { say "another postgres-up or postgres-down is in progress for $dir"; exit 1; }
  if pid=$(postgres_pid "$dir"); then
    if ! as_postgres "$postgres_bin/pg_ctl" stop --pgdata "$dir/data" --mode fast --wait --timeout 60 --silent 8>&- \
       && postgres_pid "$dir" >/dev/null; then
      say "PostgreSQL (pid $pid) in $dir did not stop; leaving $dir in place"
      exit 1
    fi
    stopped=$((stopped + 1))
  fi
  rm -rf "$dir" "$dir.lock"
  exec 8>&-
done
say "stopped $stopped server(s) and removed the PostgreSQL state in $postgres_dir"
