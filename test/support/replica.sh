#!/usr/bin/env bash
# A streaming replica of the local PostgreSQL (Debian cluster on 127.0.0.1:5432) for the read-replica tests.
#   replica.sh hba     the pg_hba line that lets 127.0.0.1 replicate (added once, then the config reloaded)
#   replica.sh start   a running standby on 127.0.0.1:$REPLICA_PORT (default 5433): reused when one answers,
#                      else a fresh pg_basebackup (the test database is small) started and waited for
#   replica.sh stop    stopped and its directory removed
# Idempotent; runs as root (PostgreSQL's own commands as the postgres user); serialised by a lock file.
set -euo pipefail

version="$(ls /etc/postgresql | sort -n | tail -n 1)"
bin="/usr/lib/postgresql/$version/bin"
hba="/etc/postgresql/$version/main/pg_hba.conf"
port="${REPLICA_PORT:-5433}"
dir="${REPLICA_DIR:-/var/lib/postgresql/chronicle-replica-$port}"
log="$dir.log"
line="host replication all 127.0.0.1/32 trust"

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

ensure_hba() {
  if ! grep -qxF "$line" "$hba"; then
    echo "$line" >>"$hba"
    as_postgres psql -h 127.0.0.1 -p 5432 -d postgres -qtAc "SELECT pg_reload_conf()" >/dev/null
    echo "replica.sh: added '$line' to $hba"
  fi
}

standby_up() {
  [ "$(as_postgres psql -h 127.0.0.1 -p "$port" -d postgres -qtAc "SELECT pg_is_in_recovery()" 2>/dev/null || true)" = t ]
}

stop() {
  if [ -f "$dir/postmaster.pid" ]; then as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true; fi
  rm -rf "$dir"
}

start() {
  ensure_hba
  if standby_up; then echo "replica.sh: standby already up on 127.0.0.1:$port"; return; fi
  stop
  as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p 5432 -U postgres -D "$dir" -R -X stream -c fast
  # the primary's settings (a standby needs max_connections and friends at least as high), then its own place
  as_postgres tee "$dir/postgresql.conf" >/dev/null <<CONF
include '/etc/postgresql/$version/main/postgresql.conf'
data_directory = '$dir'
external_pid_file = ''
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '/tmp'
cluster_name = 'chronicle-replica'
hot_standby = on
CONF
  # the server must not inherit the lock (fd 9)
  as_postgres "$bin/pg_ctl" -D "$dir" -l "$log" -w -t 60 start >/dev/null 9>&-
  for _ in $(seq 1 60); do
    if standby_up && [ "$(as_postgres psql -h 127.0.0.1 -p "$port" -d postgres -qtAc "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")" = 1 ]; then
      echo "replica.sh: standby streaming on 127.0.0.1:$port ($dir)"
      return
    fi
    sleep 0.5
  done
  echo "replica.sh: the standby on $port did not start streaming; see $log" >&2
  exit 1
}

exec 9>"/tmp/chronicle-replica-$port.lock"
flock 9
case "${1:-}" in
  hba) ensure_hba ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 hba|start|stop" >&2; exit 2 ;;
esac
