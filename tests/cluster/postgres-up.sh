#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for tests: a fresh cluster in target/postgres (see env.sh),
# listening only on 127.0.0.1:$TRELLIS_POSTGRES_PORT (25432) and on a socket in its own directory,
# trusting connections from 127.0.0.1, with a superuser `trellis` (tests create a database each)
# and durability off for speed (fsync, synchronous_commit, full_page_writes). Waits until it
# accepts connections, then prints its URL on stdout (progress goes to stderr):
#   url=$(tests/cluster/postgres-up.sh)   # postgres://trellis@127.0.0.1:25432/postgres
# Refuses to start a second one; with --reuse, a running one is accepted as it is.
# tests/cluster/postgres-down.sh stops it and removes its data.
set -euo pipefail
source "$(dirname "$0")/env.sh"
reuse=false
[ "${1:-}" = "--reuse" ] && reuse=true
say() { echo "postgres-up: $*" >&2; }

[ -n "$postgres_bin" ] && [ -x "$postgres_bin/postgres" ] || {
  say "no PostgreSQL server found in /usr/lib/postgresql/*/bin (install Debian's postgresql package, or set TRELLIS_POSTGRES_BIN)"
  exit 1
}
postgres_resolve_dir
[ "$postgres_dir" = "$postgres_preferred_dir" ] ||
  say "the $postgres_user user cannot reach $postgres_preferred_dir, so the server lives in $postgres_dir"
data=$postgres_dir/data
run=$postgres_dir/run
log=$postgres_dir/postgres.log

mkdir -p "$(dirname "$postgres_dir")"
exec 8>"$postgres_dir.lock"
flock -n 8 || { say "another postgres-up or postgres-down is in progress for $postgres_dir"; exit 1; }

if postgres_pid "$postgres_dir" >/dev/null; then
  if $reuse; then
    say "reusing the PostgreSQL already running from $postgres_dir"
    echo "$postgres_url"
    exit 0
  fi
  say "a PostgreSQL is already running from $postgres_dir; run tests/cluster/postgres-down.sh first"
  exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$postgres_port") 2>/dev/null; then
  say "port 127.0.0.1:$postgres_port is already in use by another program (set TRELLIS_POSTGRES_PORT)"
  exit 1
fi

# A fresh cluster every time: whatever a stopped or crashed one left behind goes (but nothing that
# this script did not make: TRELLIS_POSTGRES_DIR might name the wrong directory).
postgres_check_dir "$postgres_dir" || exit 1
rm -rf "$postgres_dir"
mkdir -p "$postgres_dir"
chmod 700 "$postgres_dir"
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$postgres_dir"
as_postgres test -w "$postgres_dir" || { say "the $postgres_user user cannot write to $postgres_dir"; exit 1; }
as_postgres mkdir -m 700 "$run"

say "initialising $data ($("$postgres_bin/postgres" --version))"
as_postgres "$postgres_bin/initdb" --pgdata "$data" --username trellis --auth trust \
  --encoding UTF8 --locale C.UTF-8 --no-sync --no-instructions >"$postgres_dir/initdb.log" 2>&1 || {
  say "initdb failed:"; cat "$postgres_dir/initdb.log" >&2; exit 1
}
# Only what is written here is accepted: the socket (in a directory only the server's user can
# enter) and TCP from 127.0.0.1.
as_postgres tee "$data/pg_hba.conf" >/dev/null <<HBA
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
HBA
as_postgres tee -a "$data/postgresql.conf" >/dev/null <<CONF

# --- tests/cluster/postgres-up.sh: a throwaway server for tests ---
listen_addresses = '127.0.0.1'
port = $postgres_port
unix_socket_directories = '$run'
max_connections = 200
# No durability: a crash loses the data, which a test server does not keep anyway.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF

say "starting PostgreSQL on 127.0.0.1:$postgres_port (log: $log)"
# Its own session, so that a Ctrl-C in the terminal that started it does not stop it; fd 8 holds
# the start-up lock and must not be inherited.
as_postgres setsid "$postgres_bin/pg_ctl" start --pgdata "$data" --log "$log" --wait --timeout 60 \
  --silent 8>&- || {
  say "PostgreSQL did not start; the end of $log:"; tail -n 20 "$log" >&2
  as_postgres "$postgres_bin/pg_ctl" stop --pgdata "$data" --mode immediate >/dev/null 2>&1 || true
  exit 1
}
deadline=$(( $(date +%s) + 30 ))
until "$postgres_bin/pg_isready" --quiet --host 127.0.0.1 --port "$postgres_port" --username trellis --dbname postgres; do
  [ "$(date +%s)" -lt "$deadline" ] || { say "timed out waiting for PostgreSQL to accept connections; see $log"; exit 1; }
  sleep 0.1
done
say "PostgreSQL is ready; tests/cluster/postgres-down.sh stops it"
echo "$postgres_url"
