#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, the benchmarks and the main job's PostgreSQL mode
# (docs/deploy.md). Uses Debian's `postgresql` package, installed here when missing.
#   scripts/postgres.sh start DIR        create (once) and start a cluster in DIR on a free loopback
#                                        port; prints its URL (postgres://fenlei@127.0.0.1:PORT/fenlei)
#   scripts/postgres.sh url DIR          prints the URL of the running cluster in DIR
#   scripts/postgres.sh createdb URL NAME  creates database NAME (dropped first if present); prints its URL
#   scripts/postgres.sh stop DIR         stops it (the files stay until DIR is removed)
# The cluster trusts local connections (it listens on 127.0.0.1 only and lives in a test folder);
# a real deployment uses passwords or certificates (docs/deploy.md).
set -euo pipefail

install_postgres() {
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then return 0; fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "postgres.sh: installing Debian's postgresql" >&2
    apt-get update -qq
    # The package's own default cluster is not wanted: tests start their own.
    mkdir -p /etc/postgresql-common
    [ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "postgres.sh: please install PostgreSQL (Debian package postgresql)" >&2
    exit 1
  fi
}

bin_dir() {
  ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1
}

# PostgreSQL refuses to run as root: run its tools as the `postgres` user the package creates.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd=${1:-}
case "$cmd" in
  start)
    dir=$(realpath -m "${2:?cluster folder}")
    install_postgres
    bin=$(bin_dir)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U fenlei --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      port=$(free_port)
      # fsync stays on: the tests check that nothing committed is lost.
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c max_connections=400 -c shared_buffers=128MB" >/dev/null
      echo "$port" > "$dir/port"
      as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U fenlei -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname = 'fenlei'" | grep -q 1 \
        || as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U fenlei fenlei
    fi
    echo "postgres://fenlei@127.0.0.1:$(cat "$dir/port")/fenlei"
    ;;
  url)
    dir=$(realpath -m "${2:?cluster folder}")
    echo "postgres://fenlei@127.0.0.1:$(cat "$dir/port")/fenlei"
    ;;
  createdb)
    url=${2:?cluster URL}
    name=${3:?database name}
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "postgres.sh: bad database name $name" >&2; exit 2; }
    bin=$(bin_dir)
    "$bin/psql" "$url" -qAt -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
    echo "${url%/*}/$name"
    ;;
  stop)
    dir=$(realpath -m "${2:?cluster folder}")
    bin=$(bin_dir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start DIR | url DIR | createdb URL NAME | stop DIR" >&2
    exit 2
    ;;
esac
