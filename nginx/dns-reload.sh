#!/bin/sh
# The nginx container's command under docker compose: runs nginx in the foreground and reloads it
# whenever the set of addresses of the API service changes, so `docker compose up --scale api=6`,
# and scaling up or down later, work without editing the config.
#
# Why: nginx/nginx.compose.conf has `upstream { server api:3000 ...; }`. nginx resolves `api` when
# it loads its config, through Docker's embedded DNS (127.0.0.11, via /etc/resolv.conf), and gets
# one A record per running replica, so every replica becomes an upstream server. Open-source nginx
# 1.22 never re-resolves that name by itself (the `resolve` parameter of `server` is open source
# only from 1.27.3), and the alternative, `proxy_pass http://$var` with a `resolver`, gives up the
# upstream block: no least_conn, no keep-alive to the replicas, no shared failure marks. So this
# script asks Docker's DNS every few seconds and runs `nginx -s reload` when the answer changes.
# A reload is graceful: old workers finish their requests, new workers use the new server list.
#
#   command: ["/bin/sh", "/etc/nginx/dns-reload.sh"]        (extra arguments go to every nginx call)
#
# A new address is added only once it is ready: Docker's DNS lists a container as soon as it
# starts, seconds before the replica listens, and nginx would send it requests it can only refuse
# (a GET moves on, but after proxy_next_upstream_tries refusals the client gets a 503, and the
# failures keep the replica out for fail_timeout after it is up). So when the answer gains
# addresses, the reload waits until every address answers its readiness check (or
# NGINX_READY_WAIT_S passes); an answer that only loses addresses reloads at once.
#
# With --balance hash (nginx.compose.hash*.conf) the config has no `server api:3000` line but
# `include`s a file of `server ADDRESS:PORT ...;` lines, one per address, which this script writes
# before nginx starts and before every reload; a `# dns-reload-servers: FILE PARAMETERS` comment in
# the config names the file and the parameters of each line. Why: nginx's consistent hash places
# each `server` line on its ring by the name written there, so replicas behind one name would share
# one set of points and be picked in turn, and no user would stay on one replica. With one line per
# address each replica has its own points, and scaling moves only the users of the replicas that
# come or go.
#
# Environment: NGINX_UPSTREAM_HOST (default api), NGINX_UPSTREAM_PORT (default 3000),
# NGINX_READY_PATH (default /health/ready; NGINX_READY_PROBE=off skips the check),
# NGINX_READY_WAIT_S (default 60), NGINX_DNS_INTERVAL_S (default 2), NGINX_DNS_WAIT_S (how long
# to wait at start for the name to resolve; default 60), NGINX_BIN. The config is the one after -c
# in the arguments, else /etc/nginx/nginx.conf.
# Needs sh, getent, sort and curl: present in the Debian-based official nginx images.
set -u

NGINX=${NGINX_BIN:-nginx}
HOST=${NGINX_UPSTREAM_HOST:-api}
INTERVAL=${NGINX_DNS_INTERVAL_S:-2}
WAIT=${NGINX_DNS_WAIT_S:-60}
PORT=${NGINX_UPSTREAM_PORT:-3000}
READY_PATH=${NGINX_READY_PATH:-/health/ready}
READY_WAIT=${NGINX_READY_WAIT_S:-60}

log() { echo "dns-reload: $*" >&2; }

conf=/etc/nginx/nginx.conf
prev=
for arg in "$@"; do
  [ "$prev" = -c ] && conf=$arg
  prev=$arg
done
# "FILE PARAMETERS" when the config wants its server lines written (balance hash), else empty.
servers_spec=$(sed -n 's/^[[:space:]]*# dns-reload-servers:[[:space:]]*//p' "$conf" 2>/dev/null | head -n 1)

# Writes the server lines for the addresses in $1 (none: the name itself, so nginx resolves it and
# fails as it would without this file). Replaced in one rename: a reload never reads half a file.
write_servers() {
  [ -n "$servers_spec" ] || return 0
  file=${servers_spec%% *}
  params=${servers_spec#"$file"}
  list=${1:-$HOST}
  for a in $list; do echo "server $a:$PORT$params;"; done >"$file.new" && mv -f "$file.new" "$file"
}

# The sorted IPv4 addresses of $HOST on one line; empty when it does not resolve.
addresses() {
  { getent ahostsv4 "$HOST" 2>/dev/null || getent hosts "$HOST" 2>/dev/null; } |
    while read -r ip _; do echo "$ip"; done | sort -u | tr '\n' ' '
}

# Every address of $1 answers its readiness check (curl, 1 s each).
all_ready() {
  [ "${NGINX_READY_PROBE:-curl}" = off ] && return 0
  for ip in $1; do
    curl -fsS -m 1 -o /dev/null "http://$ip:$PORT$READY_PATH" 2>/dev/null || return 1
  done
  return 0
}

# $1 has an address that $2 lacks.
gains() {
  for ip in $1; do
    case " $2 " in *" $ip "*) ;; *) return 0 ;; esac
  done
  return 1
}

# nginx refuses to start while an upstream name does not resolve (no replica running yet).
current=$(addresses)
waited=0
while [ -z "$current" ]; do
  if [ "$waited" -ge "$WAIT" ]; then
    log "$HOST does not resolve after ${WAIT}s; starting nginx anyway"
    break
  fi
  sleep 1
  waited=$((waited + 1))
  current=$(addresses)
done
log "$HOST -> ${current:-(nothing)}"
write_servers "$current"

"$NGINX" "$@" -g 'daemon off;' &
nginx_pid=$!

# docker stop sends SIGQUIT (the nginx image's STOPSIGNAL: graceful) or SIGTERM (fast): pass it on.
forward() { kill "-$1" "$nginx_pid" 2>/dev/null; }
trap 'forward QUIT' QUIT
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP

while kill -0 "$nginx_pid" 2>/dev/null; do
  sleep "$INTERVAL" &
  wait $! 2>/dev/null # returns early on a trapped signal
  kill -0 "$nginx_pid" 2>/dev/null || break
  next=$(addresses)
  # Nothing resolves (DNS hiccup, or the service scaled to 0): keep the last good server list.
  if [ -n "$next" ] && [ "$next" != "$current" ]; then
    if gains "$next" "$current" && ! all_ready "$next"; then
      # Replicas starting: wait for them (the running config keeps serving), up to READY_WAIT.
      if [ "$next" != "${pending:-}" ]; then pending=$next; pending_since=$(date +%s); log "$HOST -> $next: waiting until the new addresses are ready"; fi
      [ $(( $(date +%s) - pending_since )) -lt "$READY_WAIT" ] && continue
      log "$HOST -> $next: not all ready after ${READY_WAIT}s; reloading anyway"
    fi
    pending=
    write_servers "$next"
    if "$NGINX" "$@" -t -q; then
      log "$HOST changed: ${current:-(nothing)}-> $next; reloading nginx"
      "$NGINX" "$@" -s reload && current=$next
    elif [ "$next" != "${failed:-}" ]; then
      log "$HOST changed to $next, but the config test failed; keeping the running config"
      write_servers "$current"
      failed=$next
    fi
  fi
done

# nginx has exited (or is exiting after a forwarded signal): exit with its status.
while :; do
  wait "$nginx_pid"
  status=$?
  kill -0 "$nginx_pid" 2>/dev/null || break
done
exit "$status"
