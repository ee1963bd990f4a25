#!/bin/bash
# The parts of the official mysql image's entrypoint that recsvc's compose file relies on, for
# MariaDB. First start (empty datadir): initialise, start a server on the socket only (so a TCP
# health check stays red until init is done), set the root password, create MYSQL_DATABASE and
# MYSQL_USER, run /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh in name order, stop it. Then
# exec the real server.
set -euo pipefail
if [ "${1#-}" != "$1" ]; then set -- mariadbd "$@"; fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then exec "$@"; fi

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
log () { echo "[entrypoint] $*"; }
sql () { mariadb --protocol=socket --socket="$SOCKET" -uroot "$@"; }

if [ ! -d "$DATADIR/mysql" ]; then
  : "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD must be set (the stand-in has no random or empty root password mode)}"
  log "initialising $DATADIR"
  chown -R mysql:mysql "$DATADIR" /run/mysqld
  mariadb-install-db --user=mysql --datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db > /dev/null
  "$@" --user=mysql --skip-networking --socket="$SOCKET" &
  pid=$!
  for i in $(seq 1 60); do
    if sql -e 'SELECT 1' > /dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then log 'the init server died'; exit 1; fi
    sleep 1
  done
  esc () { printf "%s" "$1" | sed "s/'/''/g"; }
  sql <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '$(esc "$MYSQL_ROOT_PASSWORD")';
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$(esc "$MYSQL_ROOT_PASSWORD")';
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
SQL
  export MYSQL_PWD="$MYSQL_ROOT_PASSWORD"
  if [ -n "${MYSQL_DATABASE:-}" ]; then
    sql -e "CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\`"
  fi
  if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
    sql -e "CREATE USER IF NOT EXISTS '$(esc "$MYSQL_USER")'@'%' IDENTIFIED BY '$(esc "$MYSQL_PASSWORD")'"
    if [ -n "${MYSQL_DATABASE:-}" ]; then sql -e "GRANT ALL ON \`${MYSQL_DATABASE}\`.* TO '$(esc "$MYSQL_USER")'@'%'"; fi
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh) log "running $f"; . "$f" ;;
      *.sql) log "running $f"; sql ${MYSQL_DATABASE:+"$MYSQL_DATABASE"} < "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | sql ${MYSQL_DATABASE:+"$MYSQL_DATABASE"} ;;
      *) log "ignoring $f" ;;
    esac
  done
  unset MYSQL_PWD
  mariadb-admin --protocol=socket --socket="$SOCKET" -uroot -p"$MYSQL_ROOT_PASSWORD" shutdown
  wait "$pid" || true
  log 'init done'
fi
exec "$@" --user=mysql
