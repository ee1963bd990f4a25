#!/bin/sh
# As the official image: `redis-server ...` listens on every interface without protected mode.
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  exec redis-server --bind '* -::*' --protected-mode no --daemonize no "$@"
fi
exec "$@"
