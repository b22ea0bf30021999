#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster: initdb into a temporary folder, start it on a free local
# port, export its URL as INSTRUCTKIT_TEST_PG, run the command, and stop the cluster and delete the folder at exit.
# Installs Debian's postgresql when it is missing (needs root). initdb refuses to run as root, so as root the
# cluster belongs to the `postgres` user that the package creates.
#   bash scripts/with-postgres.sh npm test
# INSTRUCTKIT_PG_OPTIONS adds server settings after the defaults below (a later -c wins), e.g. to measure with the
# durability a deployment has:  INSTRUCTKIT_PG_OPTIONS='-c fsync=on -c commit_delay=100' bash scripts/with-postgres.sh …
set -euo pipefail

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$d" && -x "$d/initdb" ]] && echo "$d"
}

if ! PGBIN=$(pg_bin); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "PostgreSQL is not installed: run  sudo apt-get install -y postgresql" >&2
    exit 1
  fi
  echo "installing Debian's postgresql (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  PGBIN=$(pg_bin)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/ik-pg-XXXXXX")
as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)))

stop() {
  "${as_owner[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
# Interrupted or killed, it still stops the cluster (the EXIT trap runs on the way out).
trap 'exit 130' INT TERM

"${as_owner[@]}" "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
# Durability is not what the tests measure: fsync off keeps a cluster that is deleted at exit fast.
"${as_owner[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off -c max_connections=300 ${INSTRUCTKIT_PG_OPTIONS:-}" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

export INSTRUCTKIT_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres"
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') for the tests at $INSTRUCTKIT_TEST_PG" >&2
"$@"
